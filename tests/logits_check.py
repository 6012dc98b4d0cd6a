#!/usr/bin/python3
"""`ropefold logits` against the NumPy reference forward pass, as TAP.

For every family of tests/family_fixtures.py (tied and untied heads, f32
and bf16 storage): the logits `ropefold logits --out` writes, in float64
and in float32, against tests/reference_forward.py's (written from the
families' published definitions, never from ropefold), DeepSeek's MLA
folders included (tests/mla_forward.sh holds them to 1e-10). Then the shared checkpoints when present
(../shared/models or $ROPEFOLD_SHARED_MODELS): tiny_llama_hf's golden f32
logits, stories260K's greedy text from BOS (run.c's, byte for byte), the
.bin and the .gguf giving the same logits, and the half-split pairing
departing from the story within 12 tokens. Last, bad input: exit 2, one
line on stderr.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import family_fixtures as ff  # noqa: E402
import reference_forward as rf  # noqa: E402
import gguf_families as gf  # noqa: E402
import gguf_quant_fixtures as gq  # noqa: E402
import reference_quant as rq  # noqa: E402

ROPEFOLD = os.environ.get("ROPEFOLD", "./ropefold")
results = []
TOKENS = [3, 17, 0, 42, 9, 55, 1, 23, 8, 31, 12, 47, 5, 60, 2, 38, 19, 27, 44, 7]


def check(what, good, detail=""):
    results.append(bool(good))
    print("%s %d - %s%s" % ("ok" if good else "not ok", len(results), what,
                            " (%s)" % detail if detail else ""))
    sys.stdout.flush()


def skip(what, why):
    results.append(True)
    print("ok %d - %s # SKIP %s" % (len(results), what, why))


def run(*args):
    p = subprocess.run([ROPEFOLD] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def one_line_exit2(rc, out, err):
    return rc == 2 and not out and err.count("\n") == 1


def ropefold_logits(folder, tokens, precision, out):
    rc, _, err = run("logits", "--model", folder, "--tokens", ",".join(map(str, tokens)),
                     "--precision", precision, "--out", out)
    if rc != 0:
        return None, err.strip()
    return np.load(out).astype(np.float64), ""


def check_families(tmp):
    for family in ff.FAMILIES:
        folder = os.path.join(tmp, family)
        cfg = ff.make_fixture(family, folder)
        V = cfg.get("vocab_size") or cfg.get("text_config", {}).get("vocab_size")
        tokens = [t % V for t in TOKENS]
        m = rf.load_model(folder)
        ref = rf.forward(m, tokens).astype(np.float64)
        for prec, tol in (("f64", 1e-6), ("f32", 2e-5)):
            got, why = ropefold_logits(folder, tokens, prec, os.path.join(tmp, "l.npy"))
            if got is None:
                check("%s %s: logits" % (family, prec), False, why[:200])
                continue
            err = rel(got, ref)
            check("%s %s: logits against the reference" % (family, prec), err < tol,
                  "rel %.1e, tol %.0e" % (err, tol))
    # the other head and a 16-bit storage on a few families
    for family, tied, dtype in (("llama", True, "bf16"), ("qwen2", False, "bf16"),
                                ("gemma", True, "bf16"), ("gpt-neox", False, "f16"),
                                ("phi3", True, "f32"), ("olmo2", True, "bf16")):
        folder = os.path.join(tmp, "%s-%s-%s" % (family, tied, dtype))
        cfg = ff.make_fixture(family, folder, dtype=dtype, tied=tied)
        tokens = [t % cfg["vocab_size"] for t in TOKENS]
        ref = rf.forward(rf.load_model(folder), tokens).astype(np.float64)
        got, why = ropefold_logits(folder, tokens, "f64", os.path.join(tmp, "l.npy"))
        err = rel(got, ref) if got is not None else float("inf")
        check("%s %s %s head: logits against the reference" % (
            family, dtype, "tied" if tied else "untied"), err < 1e-6, why or "rel %.1e" % err)


def check_shared(models):
    folder = os.path.join(models, "tiny_llama_hf")
    if os.path.exists(os.path.join(folder, "golden_logits_f32_40x112.bin")):
        meta = open(os.path.join(folder, "golden_meta.txt")).read()
        tokens = [int(t) for t in meta.split("tokens=")[1].split(",")]
        gold = np.fromfile(os.path.join(folder, "golden_logits_f32_40x112.bin"), "<f4")
        gold = gold.reshape(len(tokens), -1).astype(np.float64)
        for prec in ("f32", "f64"):
            got, why = ropefold_logits(folder, tokens, prec, os.path.join(tmp, "g.npy"))
            err = rel(got, gold) if got is not None else float("inf")
            check("tiny_llama_hf golden logits in %s within 1e-5" % prec, err < 1e-5,
                  why or "rel %.1e" % err)
        rc, _, _ = run("logits", "--model", folder, "--tokens", ",".join(map(str, tokens)),
                       "--rope", "interleaved", "--out", os.path.join(tmp, "gi.npy"))
        err = rel(np.load(os.path.join(tmp, "gi.npy")).astype(np.float64), gold) if rc == 0 else 0
        check("tiny_llama_hf with interleaved pairing misses the golden logits", err > 0.03,
              "rel %.2f" % err)
    else:
        skip("tiny_llama_hf golden logits", "no tiny_llama_hf in %s" % models)
    binf = os.path.join(models, "stories260K.bin")
    if not os.path.exists(binf) or not os.path.exists(os.path.join(models, "tok512.bin")):
        skip("stories260K greedy text", "no stories260K.bin and tok512.bin in %s" % models)
        return
    want = open(os.path.join(models, "stories260K_greedy200.txt"), "rb").read()
    rc, out, err = run("logits", "--model", binf, "--tokens", "1", "--generate", "200", "--json")
    got = json.loads(out)["generated"]["text"].encode() if rc == 0 else b""
    check("stories260K greedy 200 steps from BOS reproduces run.c's text byte for byte",
          got == want, "%d of %d bytes%s" % (len(got), len(want), err.strip()[:100]))
    rc, out, err = run("logits", "--model", binf, "--tokens", "1", "--generate", "12",
                       "--rope", "half", "--json")
    got = json.loads(out)["generated"]["text"].encode() if rc == 0 else want
    check("stories260K with half-split pairing departs within 12 tokens",
          not want.startswith(got), repr(got[:60]))
    gguf = os.path.join(models, "stories260K.gguf")
    if os.path.exists(gguf):
        ids = [1, 403, 407, 261, 378, 432, 383, 286]
        a, why_a = ropefold_logits(binf, ids, "f32", os.path.join(tmp, "a.npy"))
        b, why_b = ropefold_logits(gguf, ids, "f32", os.path.join(tmp, "b.npy"))
        same = a is not None and b is not None and np.array_equal(a, b)
        check("stories260K .bin and .gguf give the same logits", same, why_a or why_b)
        rc, out, err = run("logits", "--model", gguf, "--tokens", "1", "--top", "1", "--json")
        text = json.loads(out)["top"][0][0]["text"] if rc == 0 else None
        check("stories260K.gguf shows its tokenizer.ggml.tokens text", text == "\u2581Once" or
              text == " Once", repr(text))


def check_bad_input(tmp):
    folder = os.path.join(tmp, "llama")
    V = json.load(open(os.path.join(folder, "config.json")))["vocab_size"]
    rc, out, err = run("logits", "--model", folder, "--tokens", "1,%d" % V)
    check("an id past the vocabulary: exit 2, one line naming it",
          one_line_exit2(rc, out, err) and str(V) in err, err.strip())
    rc, out, err = run("logits", "--model", folder, "--tokens", "1,2", "--generate", "3")
    check("--generate without a vocabulary: exit 2, one line",
          one_line_exit2(rc, out, err) and "vocabulary" in err, err.strip())
    rc, out, err = run("logits", "--tokens", "1,2")
    check("no --model: exit 2, one line", one_line_exit2(rc, out, err), err.strip())
    out_path = os.path.join(tmp, "never.npy")
    rc, out, err = run("logits", "--model", folder, "--tokens", "1,%d" % V, "--out", out_path)
    check("a refused run leaves no .npy", rc == 2 and not os.path.exists(out_path), err.strip())
    # an untied config whose file lost its lm_head: refused, never tied silently
    nohead = os.path.join(tmp, "llama-nohead")
    ff.make_fixture("llama", nohead, tied=False)
    st = os.path.join(nohead, "model.safetensors")
    tensors, _ = rf.read_safetensors(st)
    del tensors["lm_head.weight"]
    ff.write_safetensors(st, tensors, "f32")
    rc, out, err = run("logits", "--model", nohead, "--tokens", "1,2")
    check("tie_word_embeddings false without lm_head: exit 2, one line naming it",
          one_line_exit2(rc, out, err) and "lm_head" in err, err.strip())
    # an HF tokenizer.json beside the config: byte-level BPE pieces
    tok = os.path.join(tmp, "llama-tok")
    ff.make_fixture("llama", tok)
    pieces = ["\u0120w%d" % i for i in range(V)]
    with open(os.path.join(tok, "tokenizer.json"), "w") as f:
        json.dump({"model": {"type": "BPE", "vocab": {p: i for i, p in enumerate(pieces)}},
                   "added_tokens": [{"id": 0, "content": "<s>"}]}, f)
    rc, out, err = run("logits", "--model", tok, "--tokens", "0,5", "--generate", "4", "--json")
    doc = json.loads(out) if rc == 0 else {}
    ids = doc.get("generated", {}).get("ids", [])
    want = "".join(" w%d" % i if i else "<s>" for i in ids)
    check("tokenizer.json: the continuation decoded from byte-level pieces",
          rc == 0 and len(ids) == 4 and doc["generated"]["text"] == want and
          doc["top"][1][0]["text"] == (" w%d" % doc["top"][1][0]["id"]
                                       if doc["top"][1][0]["id"] else "<s>"),
          (err or json.dumps(doc.get("generated")))[:160])
    rc, out, _ = run("logits", "--model", folder, "--seq", "7", "--seed", "3", "--json")
    doc = json.loads(out) if rc == 0 else {}
    check("--seq 7: seven seeded ids below the vocabulary, top 5 each",
          len(doc.get("tokens", [])) == 7 and all(0 <= t < V for t in doc["tokens"]) and
          all(len(t) == 5 for t in doc["top"]) and doc["vocab"] == V, out[:100])


def gguf_as_hf(path, folder):
    """A llama GGUF of tests/gguf_quant_fixtures.py as an HF folder: every
    tensor dequantized by tests/reference_quant.py (float32, exact), HF's
    names, and W_q/W_k rows taken back from llama.cpp's interleaved order
    to HF's half-split one (the inverse of its converter's permute)."""
    t = {name: rq.dequantize(dt, raw).reshape(shape)
         for name, (dt, shape, raw) in rq.read_gguf(path).items()}
    D, V = t["token_embd.weight"].shape[1], t["token_embd.weight"].shape[0]
    L = 1 + max(int(n.split(".")[1]) for n in t if n.startswith("blk."))
    H, G, hd = gq.H, gq.G, gq.HD

    def unpermute(w, n):
        return w.reshape(n, hd // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)

    out = {"model.embed_tokens.weight": t["token_embd.weight"],
           "model.norm.weight": t["output_norm.weight"], "lm_head.weight": t["output.weight"]}
    names = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    for l in range(L):
        for g, h in names.items():
            w = t["blk.%d.%s.weight" % (l, g)]
            if g == "attn_q":
                w = unpermute(w, H)
            if g == "attn_k":
                w = unpermute(w, G)
            out["model.layers.%d.%s.weight" % (l, h)] = w
    os.makedirs(folder, exist_ok=True)
    ff.write_safetensors(os.path.join(folder, "model.safetensors"),
                         {k: np.asarray(v, np.float32) for k, v in out.items()}, "f32")
    cfg = {"model_type": "llama", "hidden_size": D, "intermediate_size":
           t["blk.0.ffn_gate.weight"].shape[0], "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": G, "vocab_size": V,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
           "tie_word_embeddings": False, "max_position_embeddings": 512}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    return V


def check_quantized(tmp):
    """Quantized GGUF files: their logits against the reference run on the
    dequantized values."""
    for kind in ("q4_k_m", "zoo"):
        path = os.path.join(tmp, "%s.gguf" % kind)
        p = subprocess.run([sys.executable, os.path.join(HERE, "gguf_quant_fixtures.py"),
                            "--kind", kind, "--out", path], stderr=subprocess.PIPE)
        if p.returncode:
            check("%s GGUF fixture" % kind, False, p.stderr.decode()[:200])
            continue
        V = gguf_as_hf(path, os.path.join(tmp, kind + "-hf"))
        tokens = [t % V for t in TOKENS]
        ref = rf.forward(rf.load_model(os.path.join(tmp, kind + "-hf")), tokens)
        for prec, tol in (("f64", 1e-6), ("f32", 2e-5)):
            got, why = ropefold_logits(path, tokens, prec, os.path.join(tmp, "q.npy"))
            err = rel(got, ref) if got is not None else float("inf")
            check("%s GGUF %s: logits against the reference on the dequantized weights" % (
                kind, prec), err < tol, why or "rel %.1e" % err)


def check_gguf_families(tmp):
    """The families' fixtures converted to GGUF as llama.cpp's converter
    lays them out (tests/gguf_families.py): their logits against the
    reference run on the HF folder (for GPT-NeoX with the tanh GELU that
    llama.cpp computes for it)."""
    import shutil
    for family in ("llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "olmo2", "phi3",
                   "gpt-neox", "qwen2-moe", "mixtral", "mixtral-old-experts"):
        # Mixtral (arch llama) with its experts merged into ffn_*_exps, and
        # as older converters wrote them, one blk.N.ffn_gate.E tensor each
        old = family.endswith("-old-experts")
        if old:
            family = family[:-len("-old-experts")]
        folder = os.path.join(tmp, "g-" + family + ("-old" if old else ""))
        cfg = ff.make_fixture(family, folder)
        path = folder + ".gguf"
        gf.write(path, *gf.convert(folder, old_experts=old))
        if old:
            family += " (one tensor per expert)"
        ref_folder = folder
        if family == "gpt-neox":
            ref_folder = folder + "-tanh"
            shutil.copytree(folder, ref_folder)
            cfg["hidden_act"] = "gelu_new"
            with open(os.path.join(ref_folder, "config.json"), "w") as f:
                json.dump(cfg, f)
        # T below Phi-3's sliding window, which llama.cpp does not apply
        tokens = [t % cfg["vocab_size"] for t in TOKENS[:10]]
        ref = rf.forward(rf.load_model(ref_folder, embed_scale="exact"), tokens)
        got, why = ropefold_logits(path, tokens, "f64", os.path.join(tmp, "gg.npy"))
        err = rel(got, ref) if got is not None else float("inf")
        check("%s as GGUF: logits against the reference" % family, err < 1e-6,
              why or "rel %.1e" % err)


def check_verify(tmp):
    """verify --logits: a fold holds at the model level (also stored in bf16,
    judged by bf16's rounding), a non-commuting fold breaks there."""
    for family, dtype in (("llama", "f32"), ("qwen3", "bf16"), ("gemma2", "f32")):
        folder = os.path.join(tmp, "v-%s-%s" % (family, dtype))
        ff.make_fixture(family, folder, dtype=dtype)
        good, bad = folder + "-fold", folder + "-broken"
        rc1, _, e1 = run("fold", "--model", folder, "--out", good)
        rc2, _, e2 = run("fold", "--model", folder, "--out", bad, "--drop", "commutes")
        if rc1 or rc2:
            check("%s %s: fold for verify --logits" % (family, dtype), False, (e1 + e2)[:200])
            continue
        rc, out, err = run("verify", folder, good, "--logits", "--seq", "12", "--json")
        ml = json.loads(out).get("model_level") if out else None
        check("%s %s: verify --logits of a fold holds at the model level" % (family, dtype),
              rc == 0 and ml and ml["holds"] and ml["top1_agreement"] == 1.0 and
              ml["first_disagreement"] is None and ml["tokens"] == 12,
              "rc %d, %s" % (rc, ml and {k: ml[k] for k in ("max_rel_logit_err", "tol_rel")}))
        rc, out, err = run("verify", folder, bad, "--logits", "--tokens", "1,2,3,4,5,6,7,8",
                           "--json")
        ml = json.loads(out).get("model_level") if out else None
        check("%s %s: a non-commuting fold breaks at the model level" % (family, dtype),
              rc == 1 and ml and not ml["holds"] and ml["max_rel_logit_err"] > ml["tol_rel"],
              "rc %d, %s" % (rc, ml and ml["max_rel_logit_err"]))
    folder = os.path.join(tmp, "llama")
    rc, out, err = run("verify", folder, folder, "--seq", "8")
    check("verify --seq without --logits: exit 2, one line", one_line_exit2(rc, out, err),
          err.strip())
    rc, out, err = run("verify", folder, folder, "--json")
    check("verify without --logits: model_level null",
          rc == 0 and json.loads(out)["model_level"] is None, err.strip())


models = os.path.abspath(os.environ.get("ROPEFOLD_SHARED_MODELS") or os.path.join(
    os.environ.get("SRCDIR", os.path.join(HERE, "..")), "..", "shared", "models"))
with tempfile.TemporaryDirectory() as tmp:
    check_families(tmp)
    check_shared(models)
    check_bad_input(tmp)
    check_verify(tmp)
    check_quantized(tmp)
    check_gguf_families(tmp)
print("1..%d" % len(results))
sys.exit(0 if all(results) else 1)
