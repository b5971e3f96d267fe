"""An inference microservice: one process that keeps a finished job's model loaded (and whatever the plugin
caches warm) and answers requests on a loopback port; the job service starts it, forwards requests to it and
stops it.

    python -m tao_launcher.service.microservice PLUGIN MODEL_JOB_DIR PORT_FILE

The plugin's ``inference_server`` (protocol 1.1) builds a predictor from the model job's folder:
``predictor(request: dict) -> dict``. The chosen port is written to PORT_FILE once the model is loaded.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_REQUEST_BYTES = 64 * 2**20  # an inference request's images; the job service forwards no larger one


def serve(plugin_name: str, model_dir: Path, port_file: Path) -> None:
    from tao_launcher.plugins import discover

    plugin = discover()[plugin_name]
    predictor = plugin.load(plugin.spec.inference_server)(model_dir)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._reply(200, {"status": "ready"} if self.path == "/health" else {"error_desc": "not found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                return self._reply(413, {"error_desc": f"request over {MAX_REQUEST_BYTES} bytes", "error_code": 413})
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
                return self._reply(200, predictor(request))
            except ValueError as exc:  # a request the predictor cannot use: say why, in one line
                return self._reply(400, {"error_desc": str(exc), "error_code": 400})

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # the job log gets one line per request from the predictor, if any
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(port_file)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
