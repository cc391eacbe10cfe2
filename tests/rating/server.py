"""A loopback OpenAI-compatible chat-completions server around a tiny transformers model, for tests and benchmarks.

It really generates: prompts are rendered with the model's chat template; ``response_format`` (OpenAI
``json_schema``, TGI ``json_object`` + ``value``) and vLLM's ``guided_json`` / ``structured_outputs`` are honoured
by decoding the rating JSON skeleton; ``logprobs`` / ``top_logprobs`` come from a teacher-forced pass over the
answer; ``continue_final_message`` continues an assistant prefix (vLLM). A :class:`FaultPlan` makes requests fail
on purpose: ``("429", seconds)`` with ``Retry-After``, ``"500"``, ``("slow", seconds)``, ``"drop"`` (close the
connection without an answer).

Run it by hand (for the benchmark or a manual check)::

    python tests/rating/server.py --model DIR --port 8011
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultPlan:
    """Faults handed out to incoming chat requests in arrival order (then none)."""

    def __init__(self, faults=()):
        self._faults = list(faults)
        self._lock = threading.Lock()
        self.requests = 0
        self.served = 0
        self.bodies: list[dict] = []  # every chat request body received, for payload assertions

    def next(self):
        with self._lock:
            self.requests += 1
            return self._faults.pop(0) if self._faults else None


class ModelServer:
    """Serve ``model_dir`` on ``127.0.0.1`` (a free port) at ``/v1/chat/completions``.

    Parameters
    ----------
    model_dir : str
        A folder with a causal LM and a tokenizer with a chat template.
    served_name : str
        The model name requests must use (``"dummy"``, as TGI clients send, is accepted too).
    api_key : str, optional
        When set, requests need ``Authorization: Bearer <api_key>`` (else HTTP 401).
    faults : FaultPlan, optional
    max_top_logprobs : int
        Largest ``top_logprobs`` accepted (vLLM's ``--max-logprobs``).
    latency : float
        Seconds every answer is held back outside the model lock, like the network round trip and queueing of a
        remote endpoint (benchmarks of client-side concurrency).
    """

    def __init__(self, model_dir: str, *, served_name: str = "tiny", api_key: str | None = None,
                 faults: FaultPlan | None = None, max_top_logprobs: int = 1000, port: int = 0,
                 latency: float = 0.0):
        import torch
        import transformers

        from ds2_hf.rating import RatingConfig
        from ds2_hf.rating.backends.transformers import TransformersBackend

        self.tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.torch = torch
        self.served_name = served_name
        self.api_key = api_key
        self.faults = faults or FaultPlan()
        self.max_top_logprobs = max_top_logprobs
        self.latency = latency
        self._model_lock = threading.Lock()
        self._skeleton = lambda **kw: TransformersBackend(
            RatingConfig(model=model_dir, **kw), model=self.model, tokenizer=self.tok
        )
        server = self
        self.httpd = _QuietServer(("127.0.0.1", port), _handler(server))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- generation ----------------------------------------------------------------------------------------
    def complete(self, body: dict) -> dict:
        torch = self.torch
        messages = body["messages"]
        cont = bool(body.get("continue_final_message"))
        prompt = self.tok.apply_chat_template(
            messages, tokenize=False, continue_final_message=cont,
            add_generation_prompt=bool(body.get("add_generation_prompt", True)) and not cont,
        )
        rf = body.get("response_format") or {}
        structured = (rf.get("type") in ("json_schema", "json_object") or body.get("guided_json") is not None
                      or body.get("structured_outputs") is not None)
        temperature = float(body.get("temperature") if body.get("temperature") is not None else 1.0)
        max_tokens = int(body.get("max_tokens") or 64)
        with self._model_lock:
            prompt_ids = self.tok(prompt, add_special_tokens=False)["input_ids"]
            if structured:
                be = self._skeleton(mode="generate", do_sample=temperature > 0, temperature=max(temperature, 1e-6),
                                    top_p=float(body.get("top_p") or 1.0), seed=int(body.get("seed") or 0),
                                    max_input_tokens=10**6)
                text = be.skeleton_answers([prompt])[0]
                answer_ids = self.tok(prompt + text, add_special_tokens=False)["input_ids"][len(prompt_ids):]
            else:
                torch.manual_seed(int(body.get("seed") or 0))
                kwargs = {"do_sample": temperature > 0}
                if temperature > 0:
                    kwargs.update(temperature=temperature, top_p=float(body.get("top_p") or 1.0))
                out = self.model.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                                          max_new_tokens=max_tokens, pad_token_id=self.tok.pad_token_id, **kwargs)
                answer_ids = out[0, len(prompt_ids):].tolist()
                if self.tok.eos_token_id in answer_ids:
                    answer_ids = answer_ids[: answer_ids.index(self.tok.eos_token_id)]
                text = self.tok.decode(answer_ids, skip_special_tokens=True)
            logprobs = None
            if body.get("logprobs") and answer_ids:
                k = min(int(body.get("top_logprobs") or 0), self.max_top_logprobs, len(self.tok))
                ids = torch.tensor([prompt_ids + answer_ids])
                with torch.inference_mode():
                    lp = torch.log_softmax(self.model(ids).logits[0].float(), dim=-1)
                content = []
                for j, tid in enumerate(answer_ids):
                    row = lp[len(prompt_ids) + j - 1]
                    top = torch.topk(row, k) if k else None
                    content.append({
                        "token": self._piece(tid), "logprob": float(row[tid]), "bytes": None,
                        "top_logprobs": [] if top is None else [
                            {"token": self._piece(int(t)), "logprob": float(v), "bytes": None}
                            for v, t in zip(top.values.tolist(), top.indices.tolist())
                        ],
                    })
                logprobs = {"content": content}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": self.served_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(answer_ids),
                      "total_tokens": len(prompt_ids) + len(answer_ids)},
        }

    def _piece(self, tid: int) -> str:
        return self.tok.convert_ids_to_tokens(tid).replace("\u2581", " ")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # clients that gave up (timeouts) are expected here
        pass


def _handler(server: ModelServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # answer in one segment, no 40 ms delayed-ACK stall

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, payload: dict, headers: dict | None = None):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                return self._send(200, {"object": "list", "data": [{"id": server.served_name, "object": "model"}]})
            self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                return self._send(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
            if body.get("model") not in (server.served_name, "dummy", None):
                return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
            server.faults.bodies.append(body)
            fault = server.faults.next()
            kind, arg = (fault if isinstance(fault, tuple) else (fault, None))
            if kind == "429":
                return self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": str(arg or 1)})
            if kind == "500":
                return self._send(500, {"error": {"message": "internal error"}})
            if kind == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if kind == "slow":
                time.sleep(float(arg or 1.0))
            if kind == "400":
                return self._send(400, {"error": {"message": "This model's maximum context length is 512 tokens"}})
            try:
                payload = server.complete(body)
            except Exception as err:  # report, do not kill the server thread
                return self._send(500, {"error": {"message": f"{type(err).__name__}: {err}"}})
            server.faults.served += 1
            if server.latency:
                time.sleep(server.latency)
            self._send(200, payload)

    return Handler


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--served-name", default="tiny")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    with ModelServer(args.model, served_name=args.served_name, port=args.port) as s:
        print(f"serving {args.model} at {s.base_url}", flush=True)
        threading.Event().wait()
