"""`acheron dhs` and its test doubles as real processes on loopback: the loop
DHS in its `BEAMLINE DHSNAME` form against fake-dcss, fake-axis (MJPEG) and
fake-automl, and a simulated DHS from `--config` with command-line overrides."""

import queue
import re
import subprocess
import threading
import time

from conftest import acheron_binary, parse_ready


class FakeDcssProcess:
    """`acheron dhs fake-dcss` as a real process: commands on stdin, every
    message it receives read line by line from stdout on a thread."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([str(acheron_binary()), "--log-level", "warn", "dhs",
                                      "fake-dcss", "--bind", "127.0.0.1:0", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        ready = parse_ready(line)
        assert ready and ready.service == "dhs fake-dcss", line
        self.port = int(ready["dcss"].rsplit(":", 1)[1])
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def command(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=10.0):
        """The first line from now on matching `pattern` (a regular expression)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; "
                                     f"last lines: {self.seen[-5:]}")
            if line is None:
                raise AssertionError(f"fake DCSS exited before {pattern!r}: {self.seen[-5:]}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def quit(self):
        self.command("quit")
        self.proc.wait(10)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def test_whole_loop_dhs_from_the_command_line(acheron_process, tmp_path, monkeypatch):
    """`acheron dhs BEAMLINE DHSNAME` with fake-dcss, fake-axis (MJPEG) and
    fake-automl, each a real process on loopback."""
    dcss = FakeDcssProcess("--loop")
    try:
        automl = acheron_process("--log-level", "warn", "dhs", "fake-automl", "--bind",
                                 "127.0.0.1:0")
        axis = acheron_process("--log-level", "warn", "dhs", "fake-axis", "--bind", "127.0.0.1:0",
                               "--fps", "20")
        (tmp_path / "BLTEST.toml").write_text(f"""
[dhs]
name = "nameInTheFile"
[dcss]
port = {dcss.port}
reconnect_s = 0.5
reconnect_min_s = 0.1
[loop]
osci_time = 0.5
video_fps = 20.0
frame_source = "mjpeg"
[loop.automl]
port = {automl.ready["http"].rsplit(":", 1)[1]}
[loop.axis]
port = {axis.ready["http"].rsplit(":", 1)[1]}
""")
        monkeypatch.setenv("ACHERON_DHS_CONFIG_DIR", str(tmp_path))
        dhs = acheron_process("--log-level", "warn", "dhs", "BLTEST", "loopDHS")
        assert dhs.ready.service == "dhs" and dhs.ready["dcss"] == f"127.0.0.1:{dcss.port}"
        dcss.expect(r"^<- loopDHS htos_send_configuration gonio_phi$")  # online, burst answered
        dcss.command("start getLoopInfo 0.2")
        dcss.command("wait 1.1 10")
        line = dcss.expect(r"^1\.1 ")
        assert line.split()[1] == "normal" and len(line.split()) == 13, line
        dcss.command("start collectLoopImages")
        dcss.command("wait 1.2 15")
        infos = []
        while True:
            line = dcss.expect(r"^(<- loopDHS htos_operation_update collectLoopImages 1\.2|1\.2 )")
            if line.startswith("1.2 "):
                break
            infos.append(line.split()[5:])
        assert line == "1.2 normal done"
        assert infos[0] == ["start_oscillation"]
        assert sorted(int(t[1]) for t in infos[1:]) == list(range(10))  # 0.5 s × 20 fps
        assert all(len(t) == 16 and t[0] == "LOOP_INFO" and t[2] == "normal" for t in infos[1:])
        assert dcss.quit() == 0  # no protocol violations
    finally:
        dcss.close()


def test_simulated_dhs_with_config_file_and_overrides(acheron_process, tmp_path):
    """`acheron dhs --config FILE --dcss HOST:PORT --name NAME` running simulated devices."""
    dcss = FakeDcssProcess("--dhs", "simDHS", "--protocol", "1", "--ion-chamber", "i0",
                           "--real-motor", "m1")
    try:
        config = tmp_path / "sim.toml"
        config.write_text("""
[dhs]
name = "other"
kind = "sim"
motor_tick_ms = 20
[dcss]
port = 1
reconnect_min_s = 0.1
[ion_chambers.i0]
counts_per_s = 500
""")
        dhs = acheron_process("--log-level", "warn", "dhs", "--config", config, "--connect",
                              f"127.0.0.1:{dcss.port}", "--name", "simDHS")
        assert dhs.ready["dcss"] == f"127.0.0.1:{dcss.port}"
        dcss.expect(r"^<- simDHS htos_send_configuration m1$")
        dcss.command("stoh_read_ion_chambers 0.2 0 i0")
        dcss.expect(r"^<- simDHS htos_report_ion_chambers 0\.200000 i0 100\.000000$")
        dcss.command("stoh_start_motor_move m1 2")
        dcss.expect(r"^<- simDHS htos_motor_move_started m1 2\.000000$")
        dcss.expect(r"^<- simDHS htos_motor_move_completed m1 2\.000000 normal$")
        assert dcss.quit() == 0
    finally:
        dcss.close()
