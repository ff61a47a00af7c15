"""What systemd does with upgate.socket and `systemctl restart upgate`, for tests/upgrade.rs.

Holds the public listening socket for as long as it runs and hands it to each upgate it
starts as systemd would (fd 3, LISTEN_FDS=1, LISTEN_PID the child's pid). Commands on stdin:
`restart` sends SIGTERM to the running upgate, waits for it to exit (its drain), and starts
the next one on the same socket; `stop` ends it all. Each start prints `started <pid>`.

usage: socket_activate.py PORT LOG -- COMMAND...
"""

import os
import signal
import socket
import subprocess
import sys


def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    command = sys.argv[sys.argv.index("--") + 1:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    # systemd's convention: the first socket is descriptor 3.
    if listener.fileno() != 3:
        os.dup2(listener.fileno(), 3)
    out = open(log, "ab")

    def start():
        child = subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", *command],
            pass_fds=(3,),
            stdout=out,
            stderr=out,
        )
        print(f"started {child.pid}", flush=True)
        return child

    child = start()
    for line in sys.stdin:
        if line.strip() == "restart":
            child.send_signal(signal.SIGTERM)
            code = child.wait()
            print(f"exited {code}", flush=True)
            child = start()
        elif line.strip() == "stop":
            break
    child.send_signal(signal.SIGTERM)
    child.wait()


if __name__ == "__main__":
    main()
