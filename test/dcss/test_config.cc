// DHS configuration files (dcss-xos.md §9.5): the embedded default, the
// loop-dhs BL-831 example as TOML, errors naming file, line and key, and the
// BEAMLINE.toml search of `acheron dhs BEAMLINE DHSNAME`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "acheron/core/Error.hh"
#include "acheron/dcss/Config.hh"

namespace acheron::dcss {
namespace {

std::string error_of(std::string_view toml) {
  try {
    parse_dhs_config(toml, "bl.toml");
  } catch (const SetupError& e) {
    return e.what();
  }
  return {};
}

TEST(DhsConfig, DefaultIsALocalLoopDhs) {
  const auto c = default_dhs_config();
  EXPECT_EQ(c.kind, "loop");
  EXPECT_EQ(c.dhs.name, "loopDHS");
  EXPECT_EQ(c.dcss.host, "127.0.0.1");
  EXPECT_EQ(c.dcss.port, 14242);
  EXPECT_EQ(c.dcss.protocol, ProtocolChoice::automatic);
  EXPECT_EQ(c.dcss.reconnect_max, std::chrono::seconds(5));
  EXPECT_EQ(c.loop.automl.host, "127.0.0.1");  // never a production host
  EXPECT_EQ(c.loop.axis.host, "127.0.0.1");
  EXPECT_EQ(c.loop.frame_source, "push");
  EXPECT_DOUBLE_EQ(c.loop.osci_time * c.loop.video_fps, 90);
  // `acheron config default dhs` prints a file that parses back to the same values.
  const auto back = parse_dhs_config(default_dhs_config_toml(), "default.toml");
  EXPECT_EQ(back.dhs.name, c.dhs.name);
  EXPECT_EQ(back.dcss.port, c.dcss.port);
  EXPECT_EQ(back.loop.automl.port, c.loop.automl.port);
  EXPECT_EQ(back.loop.jpeg_receiver.port, c.loop.jpeg_receiver.port);
  EXPECT_DOUBLE_EQ(back.loop.automl.threshold, c.loop.automl.threshold);
  EXPECT_EQ(back.loop.frame_source, c.loop.frame_source);
  // The JPEG receiver listens on loopback with bounded requests unless told otherwise.
  EXPECT_EQ(c.loop.jpeg_receiver.bind, "127.0.0.1");
  EXPECT_EQ(back.loop.jpeg_receiver.bind, "127.0.0.1");
  EXPECT_FALSE(c.loop.jpeg_receiver.problem()) << *c.loop.jpeg_receiver.problem();
  EXPECT_TRUE(c.loop.jpeg_receiver.token.empty());
  EXPECT_GT(c.loop.jpeg_receiver.request_timeout_s, 0);
  EXPECT_LE(c.loop.jpeg_receiver.request_timeout_s, 10);
  EXPECT_DOUBLE_EQ(back.loop.jpeg_receiver.request_timeout_s,
                   c.loop.jpeg_receiver.request_timeout_s);
  EXPECT_EQ(back.loop.jpeg_receiver.max_connections, c.loop.jpeg_receiver.max_connections);
}

TEST(DhsConfig, JpegReceiverKeys) {
  const auto c = parse_dhs_config(R"(
[loop.jpeg_receiver]
bind = "0.0.0.0"
port = 9000
max_bytes = 4000000
max_header_bytes = 4096
max_connections = 8
request_timeout_s = 2.5
token = "Axis-831_push.token~1"
)",
                                  "rx.toml");
  const auto& r = c.loop.jpeg_receiver;
  EXPECT_EQ(r.bind, "0.0.0.0");
  EXPECT_EQ(r.port, 9000);
  EXPECT_EQ(r.max_bytes, 4000000u);
  EXPECT_EQ(r.max_header_bytes, 4096u);
  EXPECT_EQ(r.max_connections, 8u);
  EXPECT_DOUBLE_EQ(r.request_timeout_s, 2.5);
  EXPECT_EQ(r.token, "Axis-831_push.token~1");
  auto has = [](const std::string& e, std::string_view what) {
    return e.find(what) != std::string::npos;
  };
  auto e = error_of("[loop.jpeg_receiver]\nmax_connections = 0\n");
  EXPECT_TRUE(has(e, "bl.toml:2") && has(e, "max_connections")) << e;
  e = error_of("[loop.jpeg_receiver]\nmax_connections = 100000\n");
  EXPECT_TRUE(has(e, "max_connections")) << e;
  e = error_of("[loop.jpeg_receiver]\nrequest_timeout_s = 0\n");
  EXPECT_TRUE(has(e, "request_timeout_s")) << e;
  e = error_of("[loop.jpeg_receiver]\nmax_header_bytes = 100\n");
  EXPECT_TRUE(has(e, "max_header_bytes")) << e;
  e = error_of("[loop.jpeg_receiver]\nmax_bytes = -1\n");
  EXPECT_TRUE(has(e, "max_bytes")) << e;
  e = error_of("[loop.jpeg_receiver]\ntoken = \"has space&x=1\"\n");
  EXPECT_TRUE(has(e, "token")) << e;
  e = error_of("[loop.jpeg_receiver]\nbind = \"\"\n");
  EXPECT_TRUE(has(e, "bind")) << e;
  e = error_of("[loop.jpeg_receiver]\ntimeout = 3\n");  // a typo
  EXPECT_TRUE(has(e, "timeout")) << e;
}

TEST(DhsConfig, TheBl831Example) {
  const auto c = parse_dhs_config(R"(
[dhs]
name = "loopDHS"
[dcss]
host = "dataserver3.bl831.als.lbl.gov"
port = 14242
protocol = "auto"
reconnect_s = 5.0
[loop]
osci_delta = 180.0
osci_time = 3.0
video_fps = 30.0
save_image_files = true
debug_dir = "/petabyte/loop-dhs-debug"
frame_source = "mjpeg"
[loop.automl]
host = "voltron.bl831.als.lbl.gov"
port = 5001
threshold = 0.04
scan_n_results = 5
[loop.axis]
host = "axis6.bl831.als.lbl.gov"
port = 80
camera = 1
user = "root"
password = "pw"
[loop.jpeg_receiver]
port = 9000
[motors.gonio_phi]
speed = 90.0
hw_upper = 400.0
[ion_chambers.i0]
counts_per_s = 2.5e6
)",
                                  "BL-831.toml");
  EXPECT_EQ(c.source, "BL-831.toml");
  EXPECT_EQ(c.dcss.host, "dataserver3.bl831.als.lbl.gov");
  EXPECT_EQ(c.loop.automl.port, 5001);
  EXPECT_DOUBLE_EQ(c.loop.automl.threshold, 0.04);
  EXPECT_EQ(c.loop.axis.port, 80);
  EXPECT_EQ(c.loop.axis.user, "root");
  EXPECT_EQ(c.loop.jpeg_receiver.port, 9000);
  EXPECT_TRUE(c.loop.save_image_files);
  EXPECT_EQ(c.loop.debug_dir, "/petabyte/loop-dhs-debug");
  EXPECT_EQ(c.loop.frame_source, "mjpeg");
  EXPECT_DOUBLE_EQ(c.dhs.motors.at("gonio_phi").speed, 90);
  EXPECT_DOUBLE_EQ(c.dhs.motors.at("gonio_phi").hw_upper, 400);
  EXPECT_DOUBLE_EQ(c.dhs.ion_chamber_rates.at("i0"), 2.5e6);
  // The protocol level as a number or a string.
  EXPECT_EQ(parse_dhs_config("[dcss]\nprotocol = 1\n").dcss.protocol, ProtocolChoice::v1);
  EXPECT_EQ(parse_dhs_config("[dcss]\nprotocol = \"2\"\n").dcss.protocol, ProtocolChoice::v2);
  EXPECT_EQ(parse_dhs_config("[dhs]\nkind = \"sim\"\n").kind, "sim");
}

TEST(DhsConfig, MistakesAreErrorsNamingFileAndKey) {
  auto e = error_of("[loop.automl]\nthreshhold = 0.1\n");  // a typo
  EXPECT_NE(e.find("bl.toml:2"), std::string::npos) << e;  // file and line
  EXPECT_NE(e.find("threshhold"), std::string::npos) << e;
  EXPECT_NE(error_of("[dhs]\nname = \"has space\"\n").find("dhs.name"), std::string::npos);
  EXPECT_NE(error_of("[dhs]\nname = \"" + std::string(40, 'n') + "\"\n").find("39"),
            std::string::npos);
  EXPECT_NE(error_of("[dhs]\nkind = \"motor\"\n").find("kind"), std::string::npos);
  EXPECT_NE(error_of("[dcss]\nprotocol = 3\n").find("protocol"), std::string::npos);
  EXPECT_NE(error_of("[dcss]\nport = 70000\n").find("port"), std::string::npos);
  EXPECT_NE(error_of("[dcss]\nreconnect_s = 0\n").find("reconnect_s"), std::string::npos);
  EXPECT_NE(error_of("[loop]\nframe_source = \"rtsp\"\n").find("frame_source"), std::string::npos);
  EXPECT_NE(error_of("[loop]\nvideo_fps = -30\n").find("video_fps"), std::string::npos);
  EXPECT_NE(error_of("[loop.automl]\nscan_n_results = 0\n").find("scan_n_results"),
            std::string::npos);
  EXPECT_NE(error_of("[motors]\ngonio_phi = 3\n").find("gonio_phi"), std::string::npos);
  EXPECT_NE(error_of("not toml [").find("bl.toml"), std::string::npos);
  EXPECT_THROW(load_dhs_config("/nonexistent/dir/x.toml"), SetupError);
}

TEST(DhsConfig, BeamlineFilesAreFoundInTheConfigDirectories) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("acheron-dhs-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "BL-TEST.toml") << "[dhs]\nname = \"fromFile\"\n";
  const char* old = std::getenv("ACHERON_DHS_CONFIG_DIR");
  const std::string saved = old ? old : "";
  ::setenv("ACHERON_DHS_CONFIG_DIR", dir.c_str(), 1);
  EXPECT_EQ(beamline_config_dirs().front(), dir);
  const auto path = find_beamline_config("BL-TEST");
  EXPECT_EQ(path, dir / "BL-TEST.toml");
  EXPECT_EQ(load_dhs_config(path).dhs.name, "fromFile");
  try {
    find_beamline_config("BL-NONE");
    ADD_FAILURE() << "no error for a missing beamline";
  } catch (const SetupError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find((dir / "BL-NONE.toml").string()), std::string::npos) << what;
    EXPECT_NE(what.find("/etc/acheron/dhs/BL-NONE.toml"), std::string::npos) << what;
  }
  if (old) {
    ::setenv("ACHERON_DHS_CONFIG_DIR", saved.c_str(), 1);
  } else {
    ::unsetenv("ACHERON_DHS_CONFIG_DIR");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace acheron::dcss
