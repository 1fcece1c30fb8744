// acheron._dcss: the DHS framework for Python (python/acheron/dcss.py is the
// documented interface). Operation handlers written in Python run on the
// framework's worker threads with the GIL held only while Python code runs;
// the session, reconnects, abort_all and the simulated devices stay in C++.
// The fake DCSS is exposed too, so Python tests drive a DHS like DCSS does.
#include <pybind11/chrono.h>
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>

#include "acheron/dcss/Dhs.hh"
#include "acheron/dcss/FakeDcss.hh"
#include "acheron/dcss/Session.hh"

namespace py = pybind11;
using namespace acheron;
using namespace acheron::dcss;

namespace {

Duration seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

// A Python callable owned from C++ threads: released with the GIL held.
std::shared_ptr<py::object> hold(py::object f) {
  return std::shared_ptr<py::object>(new py::object(std::move(f)), [](py::object* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
}

// A DHS: the Dhs core and its Session, owned together.
class PyDhs final {
 public:
  PyDhs(std::string name, std::string host, std::uint16_t port, std::string protocol,
        std::size_t workers, double reconnect_s) {
    DhsOptions o;
    o.name = std::move(name);
    o.workers = workers;
    dhs_ = std::make_unique<Dhs>(o);
    SessionOptions s;
    s.host = std::move(host);
    s.port = port;
    s.protocol = protocol == "1"   ? ProtocolChoice::v1
                 : protocol == "2" ? ProtocolChoice::v2
                                   : ProtocolChoice::automatic;
    s.reconnect_max = seconds(reconnect_s);
    s.reconnect_min = std::min(s.reconnect_max, seconds(0.5));
    session_ = std::make_unique<Session>(s, *dhs_);
  }
  ~PyDhs() {
    py::gil_scoped_release nogil;
    session_.reset();
    dhs_.reset();
  }

  void add_operation(const std::string& name, py::object handler) {
    auto f = hold(std::move(handler));
    dhs_->add_operation(name, [f, name](const OperationPtr& op) {
      py::gil_scoped_acquire gil;
      try {
        (*f)(op);
      } catch (py::error_already_set& e) {
        // The traceback goes to the log; DCSS gets the exception's message.
        const std::string what = e.what();
        e.restore();
        PyErr_Print();
        throw std::runtime_error(what.substr(0, what.find('\n')));
      }
    });
  }
  void start() { session_->start(); }
  void stop() {
    py::gil_scoped_release nogil;
    session_->stop();
  }
  bool online() const { return session_->online(); }
  std::uint64_t connections() const { return session_->connections(); }
  bool wait_online(double timeout) {
    py::gil_scoped_release nogil;
    const auto deadline = Clock::now() + seconds(timeout);
    while (Clock::now() < deadline) {
      if (session_->online()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return session_->online();
  }
  Dhs& dhs() { return *dhs_; }

 private:
  std::unique_ptr<Dhs> dhs_;
  std::unique_ptr<Session> session_;
};

}  // namespace

PYBIND11_MODULE(_dcss, m) {
  m.doc() = "Acheron DHS framework (see python/acheron/dcss.py)";

  py::class_<Operation, OperationPtr>(m, "Operation")
      .def_property_readonly("name", &Operation::name)
      .def_property_readonly("handle", &Operation::handle)
      .def_property_readonly("args", &Operation::args)
      .def("update", &Operation::update, py::arg("text"))
      .def("complete", &Operation::complete, py::arg("status"), py::arg("text") = "")
      .def_property_readonly("completed", &Operation::completed)
      .def_property_readonly("stop_requested", &Operation::stop_requested)
      .def_property_readonly("aborted", &Operation::aborted)
      .def_property_readonly("cancelled", &Operation::cancelled)
      .def(
          "wait_cancelled",
          [](Operation& op, double timeout) { return op.wait_cancelled(seconds(timeout)); },
          py::arg("timeout"), py::call_guard<py::gil_scoped_release>());

  py::class_<Dhs::MotorView>(m, "Motor")
      .def_readonly("name", &Dhs::MotorView::name)
      .def_readonly("pseudo", &Dhs::MotorView::pseudo)
      .def_readonly("configured", &Dhs::MotorView::configured)
      .def_readonly("moving", &Dhs::MotorView::moving)
      .def_readonly("position", &Dhs::MotorView::position)
      .def_readonly("upper_limit", &Dhs::MotorView::upper_limit)
      .def_readonly("lower_limit", &Dhs::MotorView::lower_limit);

  py::class_<PyDhs>(m, "Dhs")
      .def(py::init<std::string, std::string, std::uint16_t, std::string, std::size_t, double>(),
           py::arg("name"), py::arg("host") = "127.0.0.1", py::arg("port") = 14242,
           py::arg("protocol") = "auto", py::arg("workers") = 8, py::arg("reconnect_s") = 5.0)
      .def("add_operation", &PyDhs::add_operation, py::arg("name"), py::arg("handler"))
      .def("start", &PyDhs::start)
      .def("stop", &PyDhs::stop)
      .def_property_readonly("online", &PyDhs::online)
      .def_property_readonly("connections", &PyDhs::connections)
      .def("wait_online", &PyDhs::wait_online, py::arg("timeout") = 10.0)
      .def(
          "send", [](PyDhs& d, const std::string& text) { return d.dhs().send(text); },
          py::arg("text"))
      .def(
          "motor", [](PyDhs& d, const std::string& n) { return d.dhs().motor(n); }, py::arg("name"))
      .def(
          "shutter_open", [](PyDhs& d, const std::string& n) { return d.dhs().shutter_open(n); },
          py::arg("name"))
      .def(
          "string", [](PyDhs& d, const std::string& n) { return d.dhs().string_contents(n); },
          py::arg("name"))
      .def("registered", [](PyDhs& d, const std::string& type) {
        static const std::map<std::string, wire::xos::DeviceType> types = {
            {"real_motor", wire::xos::DeviceType::real_motor},
            {"pseudo_motor", wire::xos::DeviceType::pseudo_motor},
            {"shutter", wire::xos::DeviceType::shutter},
            {"ion_chamber", wire::xos::DeviceType::ion_chamber},
            {"encoder", wire::xos::DeviceType::encoder},
            {"string", wire::xos::DeviceType::string},
            {"operation", wire::xos::DeviceType::operation},
            {"object", wire::xos::DeviceType::object}};
        auto it = types.find(type);
        if (it == types.end()) throw py::value_error("unknown device type " + type);
        return d.dhs().registered(it->second);
      });

  py::class_<FakeDcss::OpRecord>(m, "OperationRecord")
      .def_readonly("operation", &FakeDcss::OpRecord::operation)
      .def_readonly("handle", &FakeDcss::OpRecord::handle)
      .def_readonly("updates", &FakeDcss::OpRecord::updates)
      .def_readonly("completions", &FakeDcss::OpRecord::completions)
      .def_readonly("status", &FakeDcss::OpRecord::status)
      .def_readonly("result", &FakeDcss::OpRecord::result);

  py::class_<FakeDcss>(m, "FakeDcss")
      .def(py::init([](std::vector<std::string> dhs_names, std::vector<std::string> operations,
                       std::vector<std::string> motors, std::vector<std::string> shutters,
                       int protocol) {
             FakeDcssOptions o;
             for (const auto& n : dhs_names) {
               o.rows.push_back(
                   {n, "*", protocol == 1 ? wire::xos::Protocol::v1 : wire::xos::Protocol::v2});
             }
             const std::string owner = dhs_names.empty() ? "" : dhs_names.front();
             for (const auto& n : operations) o.devices.push_back(FakeDevice::operation(n, owner));
             for (const auto& n : motors) o.devices.push_back(FakeDevice::real_motor(n, owner));
             for (const auto& n : shutters) o.devices.push_back(FakeDevice::shutter(n, owner));
             o.host_reject_delay = std::chrono::milliseconds(100);
             o.duplicate_reject_delay = std::chrono::milliseconds(100);
             auto f = std::make_unique<FakeDcss>(o);
             f->start();
             return f;
           }),
           py::arg("dhs"), py::arg("operations") = std::vector<std::string>{},
           py::arg("motors") = std::vector<std::string>{},
           py::arg("shutters") = std::vector<std::string>{}, py::arg("protocol") = 2)
      .def_property_readonly("port", &FakeDcss::port)
      .def("stop", &FakeDcss::stop, py::call_guard<py::gil_scoped_release>())
      .def("restart", &FakeDcss::restart, py::call_guard<py::gil_scoped_release>())
      .def(
          "wait_online",
          [](FakeDcss& f, const std::string& dhs, double timeout, std::uint64_t connection) {
            return f.wait_online(dhs, seconds(timeout), connection);
          },
          py::arg("dhs"), py::arg("timeout") = 10.0, py::arg("connection") = 1,
          py::call_guard<py::gil_scoped_release>())
      .def("send", &FakeDcss::send, py::call_guard<py::gil_scoped_release>())
      .def("start_operation", &FakeDcss::start_operation, py::arg("dhs"), py::arg("operation"),
           py::arg("args") = std::vector<std::string>{}, py::call_guard<py::gil_scoped_release>())
      .def("stop_operation", &FakeDcss::stop_operation, py::arg("dhs"), py::arg("operation"),
           py::arg("handle") = "", py::call_guard<py::gil_scoped_release>())
      .def("abort_all", &FakeDcss::abort_all, py::arg("mode") = "hard",
           py::call_guard<py::gil_scoped_release>())
      .def("drop", &FakeDcss::drop, py::call_guard<py::gil_scoped_release>())
      .def(
          "wait_completion",
          [](FakeDcss& f, const std::string& handle, double timeout) {
            return f.wait_completion(handle, seconds(timeout));
          },
          py::arg("handle"), py::arg("timeout") = 10.0, py::call_guard<py::gil_scoped_release>())
      .def("operation", &FakeDcss::operation)
      .def("messages",
           [](const FakeDcss& f) {
             std::vector<std::string> out;
             for (const auto& r : f.records()) out.push_back(r.text);
             return out;
           })
      .def("violations", &FakeDcss::violations);
}
