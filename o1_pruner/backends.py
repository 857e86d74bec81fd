"""Generation backends for pre-sampling: one interface, transformers (CPU or GPU) and vLLM (GPU).

A backend turns `Request`s (a rendered prompt, how many samples to draw, a per-request seed) into
`Completion`s (text, generated token ids, `num_tokens`, `finish_reason`). Both backends count tokens
the same way, from the generator's own ids: every generated token up to and including the first
end-of-sequence / end-of-turn token. `finish_reason` is "stop" when the sample ended by itself (EOS or
a stop string) and "length" when `max_tokens` cut it; any other reason an engine gives (vLLM: "abort",
None for a sequence it did not finish) is kept as it is: such a sample did not finish normally either.
The completion text keeps special markers such as `<think>`/`</think>` but not the trailing EOS (nor a
matched stop string, as vLLM does).

vLLM is imported only inside `VLLMBackend`; its pure parts (`vllm_sampling_kwargs`,
`completions_from_request_output`, `chunk_requests`, `shard_indices`, `resolve_tensor_parallel`) are
plain functions so that they can be tested without a GPU.
"""
from __future__ import annotations

import hashlib
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Iterator, Sequence

__all__ = ["Completion", "GenParams", "Request", "Backend", "TransformersBackend", "VLLMBackend", "derive_seed",
           "eos_token_ids", "cut_at_eos", "count_thinking_tokens", "shard_indices", "chunk_requests",
           "vllm_sampling_kwargs", "completions_from_request_output", "resolve_tensor_parallel", "vllm_available",
           "pick_backend", "resolve_device_dtype", "make_backend", "NORMAL_FINISH_REASONS", "other_finish_reasons"]


@dataclass
class Completion:
    "One generated sample."
    text: str  # decoded generated text, special markers kept, trailing EOS / stop string removed
    token_ids: list[int]  # generated ids, up to and including the terminating EOS (if any)
    num_tokens: int  # len(token_ids): generated tokens incl. the EOS when finish_reason == "stop"
    finish_reason: str | None  # "stop" (EOS or stop string), "length" (max_tokens reached) or an engine's other reason


@dataclass
class GenParams:
    "Sampling parameters shared by every request of a run (vLLM semantics)."
    temperature: float = 0.5  # 0 means greedy
    top_p: float = 0.8
    max_tokens: int = 8192  # max new tokens per sample
    stop: list[str] | None = None  # extra stop strings (EOS / end-of-turn always stop)
    seed: int = 0


@dataclass
class Request:
    "A prompt to draw `n` samples from."
    prompt: str
    n: int
    key: Hashable = None  # caller's id for the request (e.g. a problem id)
    seed: int | None = None  # per-request seed (derived from the run seed and the key when None)


NORMAL_FINISH_REASONS = ("stop", "length")


def other_finish_reasons(reasons: Iterable) -> dict[str, int]:
    "How many of `reasons` are neither 'stop' nor 'length', by reason ('None' for a missing one), in name order."
    out: dict[str, int] = {}
    for r in reasons:
        if r in NORMAL_FINISH_REASONS: continue
        key = "None" if r is None or (isinstance(r, float) and r != r) else str(r)
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def derive_seed(*parts) -> int:
    "A stable 31-bit seed from any printable parts (independent of PYTHONHASHSEED)."
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def eos_token_ids(tokenizer, generation_config=None) -> list[int]:
    "Ids that end a sample: the generation config's eos_token_id (int or list) plus the tokenizer's eos."
    ids: list[int] = []
    gen_eos = getattr(generation_config, "eos_token_id", None)
    if gen_eos is not None: ids += list(gen_eos) if isinstance(gen_eos, (list, tuple)) else [gen_eos]
    if getattr(tokenizer, "eos_token_id", None) is not None: ids.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(int(i) for i in ids))


def cut_at_eos(ids: Sequence[int], eos_ids: Iterable[int]) -> tuple[int, bool]:
    "(number of tokens up to and including the first EOS, whether an EOS was found); all of `ids` when none."
    eos = set(eos_ids)
    for i, t in enumerate(ids):
        if int(t) in eos: return i + 1, True
    return len(ids), False


def count_thinking_tokens(token_ids: Sequence[int], # generated ids of one sample
                          end_think_id: int|None, # id of the `</think>` token (None if not a single token)
                          start_think_id: int|None=None, # id of `<think>`, to see if the model opened a block
                          opened_by_prompt: bool=False, # the chat template already opened `<think>`
                         ) -> int|None:
    "Tokens of the thinking part: up to and including the first `</think>`; all if it never closed; None if no block."
    ids = list(token_ids)
    if end_think_id is not None and end_think_id in ids: return ids.index(end_think_id) + 1
    if opened_by_prompt or (start_think_id is not None and start_think_id in ids): return len(ids)
    return None


def shard_indices(n: int, shard_index: int = 0, num_shards: int = 1) -> list[int]:
    "Indices of `n` items that belong to shard `shard_index` of `num_shards` (round robin, so shards stay balanced)."
    if num_shards < 1: raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
    return list(range(shard_index, n, num_shards))


def chunk_requests(requests: Sequence[Request], max_sequences: int) -> Iterator[list[Request]]:
    "Consecutive groups of whole requests holding at most `max_sequences` samples (at least one request each)."
    chunk, size = [], 0
    for r in requests:
        if chunk and size + r.n > max_sequences:
            yield chunk
            chunk, size = [], 0
        chunk.append(r)
        size += r.n
    if chunk: yield chunk


class Backend(ABC):
    "Draws samples for requests; `stream` yields results batch by batch so callers can write them incrementally."
    tokenizer: Any = None
    name: str = "backend"

    @abstractmethod
    def stream(self, requests: Sequence[Request], params: GenParams) -> Iterator[list[tuple[Request, int, Completion]]]:
        "Yield, per batch, `(request, j, completion)` for the j-th sample (0 <= j < request.n) of requests."

    def generate(self, prompts: Sequence[str], n: int, params: GenParams) -> list[list[Completion]]:
        "`n` completions for each prompt (all in memory)."
        reqs = [Request(p, n, key=i) for i, p in enumerate(prompts)]
        out: list[list[Completion | None]] = [[None] * n for _ in prompts]
        for batch in self.stream(reqs, params):
            for r, j, c in batch: out[r.key][j] = c
        return out  # type: ignore[return-value]

    def runtime_info(self) -> dict:
        "Facts about the backend recorded in the store (not part of the fingerprint)."
        return {"backend": self.name}


# ----------------------------------------------------------------------------------------------- transformers
DTYPES = ("auto", "bfloat16", "float16", "float32", "bf16", "fp16", "fp32")   # the dtype names generation accepts


def resolve_device_dtype(device: str = "auto", dtype: str = "auto"):
    "(torch.device, torch.dtype): auto = CUDA with bf16 when available, else CPU with fp32."
    import torch
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(auto if device == "auto" else device)
    if dtype == "auto": dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    else:
        names = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
        dt = getattr(torch, names.get(dtype, dtype), None)
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"Unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32")
    return dev, dt


class _StopStrings:
    "Stopping criterion: a row is done once its *generated* text (not the prompt) contains a stop string, as in vLLM."
    def __init__(self, tokenizer, stops: Sequence[str], prompt_width: int):
        self.tok, self.stops, self.width = tokenizer, list(stops), prompt_width
        self.tail = 4 * max(len(s) for s in self.stops) + 4  # tokens to decode (a byte token may be part of a char)

    def __call__(self, input_ids, scores, **kw):
        import torch
        gen = input_ids[:, self.width:]
        done = [any(s in self.tok.decode(row[-self.tail:], skip_special_tokens=False) for s in self.stops)
                for row in gen.tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class TransformersBackend(Backend):
    "Batched `model.generate` with KV cache and left padding; requests grouped by prompt length."
    name = "transformers"

    def __init__(self, model, # a model folder / hub name, or a loaded causal LM
                 tokenizer=None, # a tokenizer, a path, or None for the model's own
                 batch_size: int = 32, # sequences (samples) per generate call
                 device: str = "auto", # "auto", "cpu", "cuda", "cuda:1", ...
                 dtype: str = "auto", # "auto" (bf16 on CUDA, fp32 on CPU), "bfloat16", "float16", "float32"
                 progress: bool = True, # tqdm bar with tokens/s
                 trust_remote_code: bool = False):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        if isinstance(model, (str, os.PathLike)):
            self.model_name = str(model)
            model = AutoModelForCausalLM.from_pretrained(str(model), dtype=self.dtype,
                                                         trust_remote_code=trust_remote_code)
        else:
            self.model_name = getattr(model, "name_or_path", type(model).__name__)
            if dtype == "auto": self.dtype = model.dtype  # a loaded model keeps its dtype unless told otherwise
            model = model.to(self.dtype)
        self.model = model.to(self.device).eval()
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or self.model_name),
                                                      trust_remote_code=trust_remote_code)
        self.tokenizer = tokenizer
        self.eos_ids = eos_token_ids(tokenizer, self.model.generation_config)
        if not self.eos_ids:
            raise ValueError("Neither the model's generation_config nor the tokenizer defines an EOS token")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        if batch_size < 1: raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.progress = batch_size, progress

    def runtime_info(self) -> dict:
        return {"backend": self.name, "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""),
                "batch_size": self.batch_size}

    def _gen_config(self, params: GenParams, max_new_tokens: int):
        from transformers import GenerationConfig
        greedy = params.temperature <= 0
        kw = dict(do_sample=not greedy, max_new_tokens=max_new_tokens, min_new_tokens=0, eos_token_id=self.eos_ids,
                  pad_token_id=self.pad_id, repetition_penalty=1.0, num_beams=1)
        # explicit values so that a model's own generation_config (top_k=20, repetition_penalty=1.05, ...) cannot
        # leak in: vLLM's SamplingParams only apply temperature and top_p
        if not greedy: kw.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        else: kw.update(temperature=None, top_p=None, top_k=None)
        return GenerationConfig(**kw)

    def _finish(self, row: list[int], stop: list[str] | None) -> Completion:
        "Turn one row of generated ids (maybe padded) into a Completion."
        n, hit = cut_at_eos(row, self.eos_ids)
        ids = row[:n]
        text = self.tokenizer.decode(ids[:-1] if hit else ids, skip_special_tokens=False)
        if stop and not hit:
            pos = [(text.find(s), s) for s in stop if s in text]
            if pos:
                p, s = min(pos)
                lo, hi = 1, len(ids)  # smallest prefix whose text contains the stop string
                while lo < hi:
                    mid = (lo + hi) // 2
                    if s in self.tokenizer.decode(ids[:mid], skip_special_tokens=False): hi = mid
                    else: lo = mid + 1
                return Completion(text[:p], ids[:lo], lo, "stop")
        return Completion(text, ids, n, "stop" if hit else "length")

    def stream(self, requests: Sequence[Request], params: GenParams) -> Iterator[list[tuple[Request, int, Completion]]]:
        import torch
        from tqdm.auto import tqdm
        tok = self.tokenizer
        prompt_ids = [tok(r.prompt, add_special_tokens=False)["input_ids"] for r in requests]
        # one job per sample, ordered by prompt length so that a batch needs little padding
        jobs = sorted(((len(prompt_ids[i]), i, j) for i, r in enumerate(requests) for j in range(r.n)))
        bar = tqdm(total=len(jobs), unit="seq", desc="sampling", disable=not self.progress, dynamic_ncols=True)
        n_tok, t0 = 0, time.perf_counter()
        try:
            for b in range(0, len(jobs), self.batch_size):
                batch = jobs[b:b + self.batch_size]
                width = max(L for L, _, _ in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, (L, i, _) in enumerate(batch):
                    ids[row, width - L:] = torch.tensor(prompt_ids[i])
                    mask[row, width - L:] = 1
                seeds = [requests[i].seed if requests[i].seed is not None else derive_seed(params.seed, requests[i].key)
                         for _, i, _ in batch]
                torch.manual_seed(derive_seed(params.seed, *seeds, *(j for _, _, j in batch)))
                gc = self._gen_config(params, params.max_tokens)
                kw = {"stopping_criteria": [_StopStrings(tok, params.stop, width)]} if params.stop else {}
                out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                          generation_config=gc, **kw)
                gen = out[:, width:].tolist()
                results = []
                for row, (_, i, j) in enumerate(batch):
                    c = self._finish(gen[row], params.stop)
                    n_tok += c.num_tokens
                    results.append((requests[i], j, c))
                bar.update(len(batch))
                bar.set_postfix(tok_s=f"{n_tok / max(time.perf_counter() - t0, 1e-9):.0f}")
                yield results
        finally:
            bar.close()


# ----------------------------------------------------------------------------------------------- vLLM
def vllm_available() -> bool:
    "Whether vLLM can be imported and a CUDA GPU is visible."
    import importlib.util
    if importlib.util.find_spec("vllm") is None: return False
    import torch
    return torch.cuda.is_available()


def pick_backend(name: str = "auto") -> str:
    "Resolve `auto` to `vllm` (importable and CUDA present) or `transformers`."
    if name not in ("auto", "vllm", "transformers"):
        raise ValueError(f"Unknown backend {name!r}; use auto, vllm or transformers")
    if name == "auto": return "vllm" if vllm_available() else "transformers"
    return name


def resolve_tensor_parallel(tensor_parallel_size: int, device_count: int | None = None) -> int:
    "Tensor-parallel degree: 0 means all visible GPUs."
    if tensor_parallel_size < 0: raise ValueError(f"tensor_parallel_size must be >= 0, got {tensor_parallel_size}")
    if tensor_parallel_size: return tensor_parallel_size
    if device_count is None:
        import torch
        device_count = torch.cuda.device_count()
    if device_count < 1: raise ValueError("tensor_parallel_size=0 means 'all visible GPUs', but no GPU is visible")
    return device_count


def vllm_sampling_kwargs(params: GenParams, n: int, seed: int | None) -> dict:
    "Keyword arguments of `vllm.SamplingParams` for one request with `n` samples sharing its prompt."
    kw = dict(n=n, temperature=max(params.temperature, 0.0), top_p=params.top_p if params.temperature > 0 else 1.0,
              top_k=-1, max_tokens=params.max_tokens, seed=seed, skip_special_tokens=False,
              spaces_between_special_tokens=False)
    if params.stop: kw["stop"] = list(params.stop)
    return kw


def completions_from_request_output(output, # an object shaped like vllm.RequestOutput (has .outputs)
                                    eos_texts: Sequence[str] = (), # EOS strings to strip if left at the end of a text
                                   ) -> list[Completion]:
    "Completions of one vLLM request, in sample order (`CompletionOutput.index`)."
    res = []
    for o in sorted(output.outputs, key=lambda o: o.index):
        text = o.text
        for e in eos_texts:
            if e and text.endswith(e): text = text[: -len(e)]
        ids = list(o.token_ids)
        fr = None if o.finish_reason is None else str(o.finish_reason)  # kept as given: "abort", None, newer reasons
        res.append(Completion(text, ids, len(ids), fr))
    return res


class VLLMBackend(Backend):
    "vLLM offline engine: one request per problem with `SamplingParams(n=K)`: K samples share the prompt's KV cache."
    name = "vllm"

    def __init__(self, model: str, # hub name or local folder
                 tokenizer: str | None = None, # tokenizer name/path (default: the model's)
                 tensor_parallel_size: int = 1, # GPUs per model copy; 0 = all visible GPUs
                 dtype: str = "auto", # vLLM dtype ("auto", "bfloat16", ...)
                 gpu_memory_utilization: float = 0.9, # fraction of each GPU for weights + KV cache
                 max_model_len: int | None = None, # prompt + generation limit (None: the model's)
                 seed: int = 0, # engine seed (each request also carries its own seed)
                 batch_size: int = 1024, # samples per `generate` call = checkpoint granularity of the store
                 progress: bool = True,
                 trust_remote_code: bool = False,
                 engine_kwargs: dict | None = None, # any other `vllm.LLM` argument (e.g. enable_prefix_caching)
                ):
        from vllm import LLM  # GPU-only dependency
        self.tensor_parallel_size = resolve_tensor_parallel(tensor_parallel_size)
        kw = dict(model=str(model), tokenizer=str(tokenizer or model), tensor_parallel_size=self.tensor_parallel_size,
                  dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, seed=seed,
                  trust_remote_code=trust_remote_code)
        if max_model_len: kw["max_model_len"] = max_model_len
        kw.update(engine_kwargs or {})
        self.model_name, self.dtype, self.batch_size, self.progress = str(model), dtype, batch_size, progress
        self.llm = LLM(**kw)
        self.tokenizer = self.llm.get_tokenizer()
        gen_eos = None
        try:
            from transformers import GenerationConfig
            gen_eos = GenerationConfig.from_pretrained(str(model))
        except Exception: pass
        self.eos_texts = [self.tokenizer.convert_ids_to_tokens(i) for i in eos_token_ids(self.tokenizer, gen_eos)]

    def runtime_info(self) -> dict:
        import vllm
        return {"backend": self.name, "vllm": vllm.__version__, "dtype": self.dtype,
                "tensor_parallel_size": self.tensor_parallel_size, "batch_size": self.batch_size}

    def stream(self, requests: Sequence[Request], params: GenParams) -> Iterator[list[tuple[Request, int, Completion]]]:
        from vllm import SamplingParams
        for chunk in chunk_requests(requests, self.batch_size):
            # token ids, not text: the chat template already holds any BOS, and vLLM would add another
            prompts = [{"prompt_token_ids": self.tokenizer(r.prompt, add_special_tokens=False)["input_ids"]}
                       for r in chunk]
            sps = [SamplingParams(**vllm_sampling_kwargs(
                       params, r.n, r.seed if r.seed is not None else derive_seed(params.seed, r.key)))
                   for r in chunk]
            outs = self.llm.generate(prompts, sps, use_tqdm=self.progress)
            yield [(r, j, c) for r, o in zip(chunk, outs)
                   for j, c in enumerate(completions_from_request_output(o, self.eos_texts))]


def make_backend(name: str, model, tokenizer=None, **kw) -> Backend:
    "Build the backend called `name` (auto, vllm, transformers), passing only the options it understands."
    name = pick_backend(name)
    import inspect
    cls = VLLMBackend if name == "vllm" else TransformersBackend
    ok = set(inspect.signature(cls.__init__).parameters)
    return cls(model, tokenizer=tokenizer, **{k: v for k, v in kw.items() if k in ok})
