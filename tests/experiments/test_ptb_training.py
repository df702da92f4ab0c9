"""The PTB language-model job: Zaremba et al.'s loss scale, and a short end-to-end run on a tiny
corpus in the PTB layout that must learn its repeating pattern."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from dropprior.experiments.ptb import (
    PTB_SIZES,
    PTB_VARIANTS,
    LanguageModel,
    PTBSettings,
    learning_rate,
    run_ptb_variant,
    sequence_loss,
)


def test_sequence_loss_sums_over_time_and_averages_over_the_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 7, generator=gen)
    targets = torch.randint(0, 7, (5, 3), generator=gen)
    log_p = torch.log_softmax(logits, dim=-1)
    per_sequence = [-sum(float(log_p[t, n, targets[t, n]]) for t in range(5)) for n in range(3)]
    assert float(sequence_loss(logits, targets)) == pytest.approx(sum(per_sequence) / 3, rel=1e-6)


def _write_corpus(root: Path) -> None:
    folder = root / "ptb"
    folder.mkdir()
    line = "the cat sat on the mat and the dog ran to the park <eos>"
    (folder / "ptb.train.txt").write_text((line + "\n") * 200)
    (folder / "ptb.valid.txt").write_text((line + "\n") * 20)
    (folder / "ptb.test.txt").write_text((line + "\n") * 20)


@pytest.mark.parametrize("variant", PTB_VARIANTS)
def test_a_short_run_learns_a_repeating_corpus(variant: str, tmp_path: Path) -> None:
    """11 words; a model that learnt nothing has perplexity ~11, the pattern allows ~1.3 (after
    "the" four words are possible)."""
    _write_corpus(tmp_path)
    settings = {"hidden": 16, "layers": 1, "bptt": 10, "batch_size": 4, "epochs": 3,
                "dropout": 0.1, "seed": 0}
    out = run_ptb_variant({"data_dir": str(tmp_path / "ptb"), "variant": variant,
                           "settings": settings})
    assert math.isfinite(out["test_ppl"]) and out["test_ppl"] < 3.0
    assert len(out["valid_history"]) == 3


def test_medium_preset_follows_zarembas_schedule_and_init() -> None:
    """Zaremba et al.'s medium model: lr 1 for epochs 1–6, then divided by 1.2 each epoch, and
    every parameter uniform on ±0.05."""
    medium = PTB_SIZES["medium"]
    assert [learning_rate(medium, e) for e in range(6)] == [1.0] * 6
    assert learning_rate(medium, 6) == pytest.approx(1 / 1.2)
    assert learning_rate(medium, 38) == pytest.approx(1.2 ** -33)
    model = LanguageModel("untied", 50, medium)
    for name, p in model.named_parameters():
        assert float(p.detach().abs().max()) <= 0.05 + 1e-7, name  # float32(0.05) rounds up
        assert float(p.detach().abs().max()) > 0.045, name  # filled, not left at a smaller default


def test_zaremba_small_preset_follows_their_schedule_and_init() -> None:
    """Zaremba et al.'s small model: 2 × 200, lr 1 for epochs 1–4, then halved every epoch,
    13 epochs, every parameter uniform on ±0.1."""
    small = PTB_SIZES["zaremba-small"]
    assert (small.layers, small.hidden, small.bptt, small.batch_size, small.epochs) == \
        (2, 200, 20, 20, 13)
    assert [learning_rate(small, e) for e in range(4)] == [1.0] * 4
    assert [learning_rate(small, e) for e in (4, 5, 12)] == [0.5, 0.25, 0.5**9]
    model = LanguageModel("none", 50, small)
    for name, p in model.named_parameters():
        assert 0.09 < float(p.detach().abs().max()) <= 0.1 + 1e-7, name


def test_the_zaremba_stack_is_a_multilayer_lstm_with_dropout_between_layers() -> None:
    """In eval mode the per-layer stack with explicit nn.Dropout equals torch's 2-layer
    nn.LSTM(dropout=p) with the same weights; in training mode the dropout between layers
    acts (the outputs differ from eval's)."""
    from torch import nn

    from dropprior.experiments.ptb import PTBSettings

    torch.manual_seed(0)
    s = PTBSettings(hidden=8, layers=2, dropout=0.5)
    model = LanguageModel("zaremba", 20, s)
    reference = nn.LSTM(8, 8, 2, dropout=0.5)
    with torch.no_grad():
        for k, cell in enumerate(model.rnn.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l{k}").copy_(getattr(cell, f"{name}_l0"))
    x = torch.randn(5, 3, 8)
    state = (torch.randn(2, 3, 8), torch.randn(2, 3, 8))
    model.eval()
    reference.eval()
    out, (h, c) = model.rnn(x, state)
    want, (h_ref, c_ref) = reference(x, state)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)
    model.train()
    assert not torch.allclose(model.rnn(x, state)[0], want)


@pytest.mark.parametrize("variant", ["gal", "tied", "untied"])
def test_output_noise_is_one_draw_per_sequence_on_the_last_layers_output(variant: str) -> None:
    """With output_noise the softmax layer's input is the LSTM's output times ξ of shape
    (1, N, H): constant along time, in {0, 1/(1 − p)}; in eval mode it is the output itself."""
    from dropprior.experiments.ptb import PTBSettings

    torch.manual_seed(0)
    s = PTBSettings(hidden=12, layers=2, dropout=0.4, variant=variant, output_noise=True)
    model = LanguageModel(variant, 30, s)
    seen: dict[str, torch.Tensor] = {}
    model.out.register_forward_hook(lambda m, i, out: seen.__setitem__("in", i[0]))
    tokens = torch.randint(0, 30, (9, 5))
    model.train()
    torch.manual_seed(3)
    model(tokens)
    torch.manual_seed(3)  # the LSTM draws first: the same draws again, without the output's
    h = model.rnn(model.embed(tokens))[0]
    xi = seen["in"] / h
    torch.testing.assert_close(xi, xi[:1].expand_as(xi))  # one draw per sequence and unit
    values = set(torch.round(xi[0] * 1e4).flatten().tolist())
    assert values == {0.0, round(1e4 / 0.6)}
    model.eval()
    model(tokens)
    torch.testing.assert_close(seen["in"], model.rnn(model.embed(tokens))[0])
    with pytest.raises(ValueError, match="output_noise=True applies to the gal, tied, untied "
                       "variants, got variant='zaremba'"):
        PTBSettings(variant="zaremba", output_noise=True)



def _lstm_reference() -> Any:
    """tests/nn/_lstm_reference.py, loaded by path (the test folders are not packages)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_lstm_reference", Path(__file__).parents[1] / "nn" / "_lstm_reference.py")
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    return reference


def _two_layer_run(variant: str, **settings: Any) -> tuple[LanguageModel, Tensor, Tensor, Any]:
    """A 2 × 6 language model of ``variant`` in float64 and training mode, its LSTM's input x
    for 7 × 3 tokens, its LSTM output under torch.manual_seed(5), and its Bernoulli law at
    p = 0.4; the caller replays the draws after torch.manual_seed(5)."""
    from dropprior.experiments.laws import dropout_law
    from dropprior.experiments.ptb import PTBSettings

    torch.manual_seed(0)
    s = PTBSettings(hidden=6, layers=2, dropout=0.4, variant=variant, **settings)
    model = LanguageModel(variant, 20, s).double().train()
    x = model.embed(torch.randint(0, 20, (7, 3)))
    torch.manual_seed(5)
    out = model.rnn(x)[0]
    torch.manual_seed(5)
    return model, x, out, dropout_law("bernoulli", 0.4).to(dtype=torch.float64)


def test_recurrent_noise_makes_untied_noise_the_state_too() -> None:
    """untied + recurrent: each layer is the reference LSTM loop (tests/nn/_lstm_reference.py)
    under the per-gate input draw (4, N, D) and the state draw (N, H), both drawn per sequence
    in that order from torch's generator; the setting exists only for untied."""
    from dropprior.experiments.ptb import PTBSettings

    reference = _lstm_reference()
    model, want, out, law = _two_layer_run("untied", recurrent_noise=True)
    for layer in range(2):
        xi = law.sample((4, 3, want.shape[2]), generator=torch.default_generator)
        rec = law.sample((3, 6), generator=torch.default_generator)
        want = reference._reference_lstm(want, reference._params(model.rnn, layer), xi, rec)
    torch.testing.assert_close(out, want)
    plain = LanguageModel("untied", 20, PTBSettings(hidden=6, layers=2, dropout=0.4,
                                                    variant="untied"))
    assert plain.rnn.recurrent_noise is None and model.rnn.recurrent_noise is not None
    for variant in ("tied", "gal", "zaremba", "none"):
        with pytest.raises(ValueError, match=f"recurrent_noise=True applies to the untied "
                           f"variant, got variant='{variant}'"):
            PTBSettings(variant=variant, recurrent_noise=True)


def test_weight_noise_puts_the_law_on_every_recurrent_weight() -> None:
    """tied + weight: each layer is the reference LSTM loop with U ⊙ Ξ^U (one draw of U's shape
    per call) and the tied input draw (1, N, D) per sequence, drawn in that order from torch's
    generator: AWD-LSTM's WeightDrop with variational input dropout."""
    from dropprior.experiments.ptb import PTBSettings

    reference = _lstm_reference()
    model, want, out, law = _two_layer_run("tied", weight_noise=True)
    for layer in range(2):
        w_ih, w_hh, b_ih, b_hh = reference._params(model.rnn, layer)
        mask = law.sample((24, 6), generator=torch.default_generator)
        xi = law.sample((1, 3, want.shape[2]), generator=torch.default_generator)
        want = reference._reference_lstm(want, [w_ih, w_hh * mask, b_ih, b_hh],
                                         xi.expand(4, 3, -1))
    torch.testing.assert_close(out, want)
    assert model.rnn.recurrent_weight_noise is not None and model.rnn.recurrent_noise is None
    for variant in ("zaremba", "none"):
        with pytest.raises(ValueError, match=f"weight_noise=True applies to the gal, tied, "
                           f"untied variants, got variant='{variant}'"):
            PTBSettings(variant=variant, weight_noise=True)


def test_embedding_dropout_is_word_type_noise_per_sequence() -> None:
    """embedding_dropout = p_e: the embedding is a NoisyEmbedding with the variant's law family
    at rate p_e (Bernoulli: keep 1 − p_e, inverted), one draw per word type and sequence: in a
    (T, N) batch a word's repeats in column n share their ξ; zaremba and none refuse it."""
    from dropprior.nn import NoisyEmbedding

    s = PTBSettings(hidden=6, layers=2, dropout=0.4, variant="tied", embedding_dropout=0.25)
    model = LanguageModel("tied", 20, s).train()
    assert isinstance(model.embed, NoisyEmbedding) and model.embed.granularity == "sequence"
    assert model.embed.noise.keep == pytest.approx(0.75) and model.embed.noise.inverted
    torch.manual_seed(1)
    tokens = torch.randint(0, 4, (30, 3))  # four word types, many repeats per column
    xi = (model.embed(tokens) / model.embed.weight[tokens]).detach()[..., 0]
    for n in range(3):
        for word in range(4):
            values = xi[:, n][tokens[:, n] == word]
            assert values.numel() == 0 or torch.all(values == values[0])
    kept = xi[xi != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.75))
    assert 0 < kept.numel() < xi.numel()  # some (sequence, word) pairs dropped, some kept
    assert type(LanguageModel("tied", 20, PTBSettings(hidden=6)).embed) is torch.nn.Embedding
    for variant in ("zaremba", "none"):
        with pytest.raises(ValueError, match=f"embedding_dropout > 0 applies to the gal, tied, "
                           f"untied variants, got variant='{variant}'"):
            PTBSettings(variant=variant, embedding_dropout=0.1)


def test_mc_perplexity_averages_probabilities_over_passes_before_the_log(tmp_path: Path) -> None:
    """Against S passes written out here from cross_entropy, with the same draws; and Jensen:
    the MC-averaged perplexity is at most the geometric mean of the passes' perplexities."""
    from dropprior.experiments.ptb import PTBSettings, mc_perplexity
    from dropprior.nn import mc

    torch.manual_seed(0)
    model = LanguageModel("untied", 11, PTBSettings(hidden=6, dropout=0.3))
    data = torch.randint(0, 11, (23, 2))
    torch.manual_seed(5)
    got = mc_perplexity(model, data, bptt=5, samples=3)
    torch.manual_seed(5)
    probs, nlls = [], []
    with torch.no_grad(), mc(model):
        for _ in range(3):
            state, p = None, []
            for i in range(0, 22, 5):
                x, y = data[i:i + 5], data[i + 1:i + 6]
                logits, state = model(x[:y.shape[0]], state)
                nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1).double(),
                                                        y.flatten(), reduction="none")
                p.append(torch.exp(-nll))
            probs.append(torch.cat(p))
            nlls.append(-torch.log(torch.cat(p)).mean())
    want = math.exp(-float(torch.log(torch.stack(probs).mean(0)).mean()))
    assert got == pytest.approx(want, rel=1e-9)
    assert got <= math.exp(float(torch.stack(nlls).mean())) + 1e-9
    with pytest.raises(ValueError, match="samples must be an int >= 1"):
        mc_perplexity(model, data, bptt=5, samples=0)


def test_mc_mean_embedding_is_mc_with_a_plain_embedding_of_the_same_weights() -> None:
    """mc_perplexity(mean_embedding=True) equals the MC perplexity of the same model with its
    NoisyEmbedding swapped for ``nn.Embedding`` of the same weights (inverted Bernoulli:
    E[ξ] = 1), under the same seed (neither embedding draws, so the other layers get the same
    draws); without it the embedding's draws change the result."""
    import copy

    from dropprior.experiments.ptb import mc_perplexity

    torch.manual_seed(0)
    s = PTBSettings(hidden=6, dropout=0.3, embedding_dropout=0.4)
    model = LanguageModel("tied", 11, s)
    plain = copy.deepcopy(model)
    plain.embed = torch.nn.Embedding.from_pretrained(model.embed.weight.detach().clone())
    data = torch.randint(0, 11, (23, 2))
    results = []
    for m, mean in ((model, True), (plain, False), (model, False)):
        torch.manual_seed(5)
        results.append(mc_perplexity(m, data, bptt=5, samples=3, mean_embedding=mean))
    assert results[0] == pytest.approx(results[1], rel=1e-12)
    assert results[2] != pytest.approx(results[0], rel=1e-6)
    with pytest.raises(ValueError, match="mc_mean_embedding=True .* needs embedding_dropout > "
                       "0, got embedding_dropout=0.0"):
        PTBSettings(variant="tied", mc_mean_embedding=True)
    with pytest.raises(TypeError, match="mean_embedding must be True or False"):
        mc_perplexity(model, data, bptt=5, samples=3, mean_embedding=1)  # type: ignore[arg-type]


def test_run_records_speed_and_mc_perplexity(tmp_path: Path) -> None:
    _write_corpus(tmp_path)
    settings = {"hidden": 8, "layers": 2, "bptt": 10, "batch_size": 4, "epochs": 1,
                "dropout": 0.1, "seed": 0, "mc_samples": 2}
    out = run_ptb_variant({"data_dir": str(tmp_path / "ptb"), "variant": "tied",
                           "settings": settings})
    assert out["train_tokens_per_second"] > 0 and out["epochs_run"] == 1
    assert math.isfinite(out["test_ppl_mc"]) and math.isfinite(out["valid_ppl_mc"])
    plain = run_ptb_variant({"data_dir": str(tmp_path / "ptb"), "variant": "none",
                             "settings": settings})
    assert "test_ppl_mc" not in plain  # no noise: the MC average is the plain perplexity


def test_ptb_command_writes_and_reads_its_records(tmp_path: Path, capsys) -> None:
    from dropprior.cli import main
    from dropprior.experiments.report import build_pages

    _write_corpus(tmp_path)
    argv = ["ptb", "--data-dir", str(tmp_path), "--variant", "zaremba", "tied", "--epochs", "1",
            "--mc-samples", "2", "--results", str(tmp_path / "results")]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "zaremba |" in first and "tied |" in first and "read from its record" not in first
    assert len(list((tmp_path / "results" / "ptb").glob("*.json"))) == 2
    assert main(argv) == 0
    assert capsys.readouterr().out.count("read from its record") == 2
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "| zaremba | 1 |" in page and "| tied | 1 |" in page and "1.00 |" in page
    assert main([*argv, "--output-noise"]) == 0  # zaremba read again, tied + output run
    out = capsys.readouterr().out
    assert out.count("read from its record") == 1 and "tied |" in out
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "| tied + output | 1 |" in page and "| tied | 1 |" in page
    # --recurrent-noise: untied only (zaremba read again, untied + recurrent + output run)
    assert main(["ptb", "--data-dir", str(tmp_path), "--variant", "zaremba", "untied",
                 "--epochs", "1", "--mc-samples", "2", "--results", str(tmp_path / "results"),
                 "--output-noise", "--recurrent-noise"]) == 0
    capsys.readouterr()
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "| untied + recurrent + output | 1 |" in page
    assert "` (untied + recurrent + output; commit" in page  # its command, named as its row
    # --weight-noise: the sequence-noise variants (zaremba read again, tied + weight run)
    assert main([*argv, "--weight-noise"]) == 0
    capsys.readouterr()
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "| tied + weight | 1 |" in page and "| tied | 1 |" in page
    assert main(["ptb", "--data-dir", str(tmp_path), "--variant", "zaremba",
                 "--weight-noise"]) == 2
    assert "--weight-noise applies to the gal, tied, untied variants, got --variant zaremba" \
        in capsys.readouterr().err
    # --embedding-dropout: the sequence-noise variants (zaremba read again, tied + embedding)
    assert main([*argv, "--embedding-dropout", "0.1"]) == 0
    capsys.readouterr()
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "| tied + embedding 0.1 | 1 |" in page and "| tied | 1 |" in page
    assert main(["ptb", "--data-dir", str(tmp_path), "--variant", "zaremba",
                 "--embedding-dropout", "0.1"]) == 2
    assert "--embedding-dropout applies to the gal, tied, untied variants, got --variant " \
        "zaremba" in capsys.readouterr().err
    assert main([*argv, "--embedding-dropout", "1.0"]) == 2
    assert "embedding_dropout must be a number in [0, 1), got 1.0" in capsys.readouterr().err
    assert main([*argv, "--recurrent-noise"]) == 2
    assert "--recurrent-noise applies to the untied variant (gal has it already), got " \
        "--variant zaremba tied" in capsys.readouterr().err
    assert main(["ptb", "--data-dir", str(tmp_path), "--variant", "none", "zaremba",
                 "--output-noise"]) == 2
    assert "--output-noise applies to the gal, tied, untied variants, got --variant none " \
        "zaremba" in capsys.readouterr().err
    assert main(["ptb", "--data-dir", str(tmp_path), "--mc-samples", "-1"]) == 2
    assert main(["ptb", "--data-dir", str(tmp_path), "--device", "gpu"]) == 2
    assert "device='gpu' is not a torch device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["ptb", "--data-dir", str(tmp_path), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


class _Stop(Exception):
    """Stands in for a job killed between two epochs."""


def _stop_after_checkpoints(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Make the n-th checkpoint save the last thing the run does."""
    import dropprior.experiments.ptb as ptb

    save, calls = ptb._save_checkpoint, []

    def stopping(path: Path, state: dict) -> None:
        save(path, state)
        calls.append(path)
        if len(calls) == n:
            raise _Stop

    monkeypatch.setattr(ptb, "_save_checkpoint", stopping)


@pytest.mark.parametrize("variant", ["zaremba", "untied"])
def test_a_resumed_run_equals_an_uninterrupted_one(variant: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped after epoch 2 of 3 and started again from its checkpoint, the run ends with the
    uninterrupted run's weights, history and perplexities: the model, the optimizer and torch's
    random state (the noise draws) are all restored."""
    _write_corpus(tmp_path)
    params = {"data_dir": str(tmp_path / "ptb"), "variant": variant,
              "settings": {"hidden": 8, "layers": 2, "bptt": 10, "batch_size": 4, "epochs": 3,
                           "dropout": 0.3, "seed": 0, "decay_after": 0, "mc_samples": 2}}
    whole = run_ptb_variant(params)
    checkpoint = tmp_path / "ckpt" / "run.pt"
    with monkeypatch.context() as patch:
        _stop_after_checkpoints(patch, 2)
        with pytest.raises(_Stop):
            run_ptb_variant(params, checkpoint)
    assert torch.load(checkpoint, weights_only=False)["history"] == whole["valid_history"][:2]
    seen: list[int] = []
    resumed = run_ptb_variant(params, checkpoint, lambda m: seen.append(m["epochs_run"]))
    assert seen == [3] and resumed["resumed_epochs"] == 2
    for key in ("valid_history", "valid_ppl", "test_ppl", "valid_ppl_mc", "test_ppl_mc"):
        assert resumed[key] == whole[key], key
    other = {**params, "settings": {**params["settings"], "dropout": 0.2}}
    with pytest.raises(ValueError, match="belongs to other settings .*dropout"):
        run_ptb_variant(other, checkpoint)
    # the checkpoint names the settings as before output_noise existed, and tells them apart
    assert "output_noise" not in torch.load(checkpoint, weights_only=False)["settings"]
    if variant == "untied":
        with pytest.raises(ValueError, match="belongs to other settings .*output_noise"):
            run_ptb_variant({**params, "settings": {**params["settings"], "output_noise": True}},
                            checkpoint)


def test_a_stopped_command_leaves_a_partial_record_and_resumes(
        tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed after its first epoch stays in results/ptb as partial (epoch count, no
    perplexity, shown so on the page); started again it resumes from its checkpoint, and the
    finished record replaces the partial one."""
    from dropprior.cli import main
    from dropprior.experiments.report import build_pages

    _write_corpus(tmp_path)
    results = tmp_path / "results"
    argv = ["ptb", "--data-dir", str(tmp_path), "--variant", "gal", "--epochs", "3",
            "--mc-samples", "0", "--results", str(results), "--checkpoint-dir",
            str(tmp_path / "ckpt")]
    with monkeypatch.context() as patch:
        _stop_after_checkpoints(patch, 2)
        with pytest.raises(_Stop):
            main(argv)
    (partial,) = [json.loads(p.read_text())["record"] for p in (results / "ptb").glob("*.json")]
    assert partial["metrics"]["partial"] is True and partial["metrics"]["epochs_run"] == 1
    assert "test_ppl" not in partial["metrics"]
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "| gal | 1 of 3 (partial) | — |" in page and "(gal, partial;" in page
    capsys.readouterr()
    assert main(argv) == 0
    assert "gal |" in capsys.readouterr().out
    (done,) = [json.loads(p.read_text())["record"] for p in (results / "ptb").glob("*.json")]
    assert "partial" not in done["metrics"] and done["metrics"]["resumed_epochs"] == 2
    assert len(done["metrics"]["valid_history"]) == 3
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "partial" not in page.split("## ")[1].split("Commands")[0]
    # other settings in the same checkpoint folder: their own checkpoint file, a fresh run
    assert main([*argv, "--dropout", "0.4"]) == 0
    assert "resumed_epochs" not in max((results / "ptb").glob("*.json"),
                                       key=lambda p: p.stat().st_mtime).read_text()



def test_more_mc_passes_re_evaluate_a_finished_checkpoint(tmp_path: Path, capsys) -> None:
    """A finished run started again with another --mc-samples uses the same checkpoint: no
    epoch is trained again (the page says so), and the MC perplexities equal those of an
    uninterrupted run with that S (training does not depend on S, so the random state after
    training is the same)."""
    from dropprior.cli import main
    from dropprior.experiments.report import build_pages

    _write_corpus(tmp_path)
    results, checkpoints = tmp_path / "results", tmp_path / "ckpt"
    argv = ["ptb", "--data-dir", str(tmp_path), "--variant", "untied", "--epochs", "2",
            "--results", str(results), "--checkpoint-dir", str(checkpoints)]
    assert main([*argv, "--mc-samples", "0"]) == 0
    assert main([*argv, "--mc-samples", "3"]) == 0
    capsys.readouterr()
    records = {r["config"]["mc_samples"]: r for r in
               (json.loads(p.read_text())["record"] for p in (results / "ptb").glob("*.json"))}
    first, again = records[0]["metrics"], records[3]["metrics"]
    assert again["resumed_epochs"] == 2 and len(list(checkpoints.iterdir())) == 1
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert page.count("(untied, evaluated from its finished checkpoint;") == 1
    for key in ("valid_history", "valid_ppl", "test_ppl", "train_tokens_per_second"):
        assert again[key] == first[key], key
    assert "test_ppl_mc" not in first
    whole = run_ptb_variant({"data_dir": str(tmp_path / "ptb"), "variant": "untied",
                             "settings": records[3]["config"]})
    for key in ("valid_ppl_mc", "test_ppl_mc", "test_ppl"):
        assert again[key] == pytest.approx(whole[key], rel=1e-12), key


def test_mc_mean_embedding_re_evaluates_a_finished_checkpoint(tmp_path: Path, capsys) -> None:
    """--mc-mean-embedding is an evaluation setting: a finished --embedding-dropout run started
    again with it trains no epoch, keeps its mean-scaled perplexities, and gets its own MC
    perplexities and page row; without --embedding-dropout it is refused before training."""
    from dropprior.cli import main
    from dropprior.experiments.report import build_pages

    _write_corpus(tmp_path)
    results, checkpoints = tmp_path / "results", tmp_path / "ckpt"
    argv = ["ptb", "--data-dir", str(tmp_path), "--variant", "tied", "--epochs", "1",
            "--mc-samples", "2", "--embedding-dropout", "0.3", "--results", str(results),
            "--checkpoint-dir", str(checkpoints)]
    assert main(argv) == 0
    assert main([*argv, "--mc-mean-embedding"]) == 0
    capsys.readouterr()
    records = {r["config"].get("mc_mean_embedding", False): r["metrics"] for r in
               (json.loads(p.read_text())["record"] for p in (results / "ptb").glob("*.json"))}
    assert records[True]["resumed_epochs"] == 1 and len(list(checkpoints.iterdir())) == 1
    for key in ("valid_history", "valid_ppl", "test_ppl"):
        assert records[True][key] == records[False][key], key
    assert records[True]["test_ppl_mc"] != records[False]["test_ppl_mc"]
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    assert "| tied + embedding 0.3, MC: embedding at mean | 1 |" in page
    assert "| tied + embedding 0.3 | 1 |" in page
    before = len(list((results / "ptb").glob("*.json")))
    assert main(["ptb", "--data-dir", str(tmp_path), "--variant", "tied", "--epochs", "1",
                 "--results", str(results), "--mc-mean-embedding"]) == 2
    assert "mc_mean_embedding=True holds the embedding's noise at its mean in the MC passes; " \
        "it needs embedding_dropout > 0" in capsys.readouterr().err
    assert len(list((results / "ptb").glob("*.json"))) == before


def _put_ptb_record(results: Path, variant: str, test: float, mc: float | None,
                    seed: int = 0, law: str = "bernoulli", dropout: float | None = None,
                    valid_gap: float = 4.0, **options: bool) -> None:
    from dataclasses import asdict

    from dropprior.experiments.records import make_record, record_store, settings_key

    s = {**asdict(PTB_SIZES["zaremba-small"]), "variant": variant, "seed": seed, "law": law,
         **options}
    if dropout is not None:
        s["dropout"] = dropout
    valid = test + valid_gap
    metrics = {"epochs_run": 13, "valid_ppl": valid, "test_ppl": test,
               "train_tokens_per_second": 1000.0, "valid_history": [valid]}
    if mc is not None:
        metrics |= {"valid_ppl_mc": mc + valid_gap, "test_ppl_mc": mc}
    record_store("ptb", results).put(
        settings_key("ptb", PTBSettings(**s)),
        make_record(f"dropprior ptb --variant {variant} --seed {seed}", s, seed, metrics, 1.0,
                    commit="abc"))


@pytest.mark.parametrize(("tied", "untied", "level", "moonshot"), [
    ((101.8, 98.7), (101.5, 98.1), "untied", "met"),
    ((101.8, 100.2), (101.9, None), None, "not met"),
    ((101.6, None), (103.0, 100.4), "mean-scaled: tied 101.6", "not met"),
    ((104.0, 99.0), (103.0, 101.0), "MC: tied 99.0", "met"),
])
def test_ptb_small_page_judges_level_with_gal_and_the_moonshot(tmp_path: Path, tied, untied,
                                                                level, moonshot) -> None:
    """The 2 × 200 section says whether the tied / untied test perplexity is at most gal's
    under the same evaluation (mean-scaled or MC), naming the variant, and whether it is ≤ 100
    (here validation orders the variants as test does)."""
    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    _put_ptb_record(results, "gal", 101.7, 99.3)
    _put_ptb_record(results, "zaremba", 97.0, 96.0)  # not ours: judged on neither
    _put_ptb_record(results, "tied", *tied)
    _put_ptb_record(results, "untied", *untied)
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    (line,) = [x for x in page.splitlines() if x.startswith("- tied or untied at least level")]
    assert line.endswith("**met**" if level else "not met")
    if level == "untied":
        assert "(one seed each, each side's variant chosen on validation; mean-scaled: untied " \
            "101.5 against gal 101.7; MC: untied 98.1 against gal 99.3)" in line
    elif level:
        assert level in line
    (line,) = [x for x in page.splitlines() if x.startswith("- moonshot")]
    assert line.endswith("**met**" if moonshot == "met" else "not met")
    best = min(v for v in (*tied, *untied) if v is not None)
    assert f" {best:.1f} (" in line


def test_ptb_targets_choose_each_sides_variant_on_validation(tmp_path: Path) -> None:
    """tied has the lower test perplexity but untied the lower validation perplexity: untied is
    the one compared with gal and judged for the moonshot; so is gal + weight, whose validation
    is lower than plain gal's although its test is higher."""
    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    _put_ptb_record(results, "gal", 99.5, 98.5, valid_gap=6.0)
    _put_ptb_record(results, "gal", 100.5, 99.5, valid_gap=2.0, weight_noise=True)
    _put_ptb_record(results, "tied", 99.0, 98.0, valid_gap=6.0)  # valid 105.0 / MC 104.0
    _put_ptb_record(results, "untied", 101.0, 100.5, valid_gap=2.0)  # valid 103.0 / MC 102.5
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    (line,) = [x for x in page.splitlines() if x.startswith("- tied or untied at least level")]
    assert "mean-scaled: untied 101.0 against gal + weight 100.5; MC: untied 100.5 against " \
        "gal + weight 99.5" in line
    assert line.endswith("not met")  # tied, chosen on test, would have met it
    (line,) = [x for x in page.splitlines() if x.startswith("- moonshot")]
    assert "untied 100.5 (MC)" in line and line.endswith("not met")


@pytest.mark.parametrize(("untied", "verdict", "moonshot"), [
    # untied clearly below gal: a win beyond the combined standard error
    (((96.0, 95.0), (97.0, 96.0)), "untied beats gal", "met"),
    # within the noise of two seeds: level (≤) is met, no win either way
    (((101.0, 99.0), (102.5, 99.5)), "within the combined standard error", "met"),
    # clearly above gal: not level
    (((106.0, 104.0), (107.0, 105.0)), "gal beats untied", "not met"),
])
def test_ptb_page_summarises_seeds_and_judges_gal_on_means(tmp_path: Path, untied, verdict,
                                                           moonshot) -> None:
    """Variants run under two seeds get mean ± standard error (numpy's, ddof = 1) over them; the
    level-with-gal line compares means and calls a win only beyond the combined standard error;
    a variant with one seed is left out of the summary."""
    import numpy as np

    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    gal = ((101.7, 99.3), (102.1, 99.9))
    for seed in (0, 1):
        _put_ptb_record(results, "gal", *gal[seed], seed=seed)
        _put_ptb_record(results, "untied", *untied[seed], seed=seed)
    _put_ptb_record(results, "tied", 90.0, 89.0, seed=0)  # one seed: not summarised
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    section = page.split(": across seeds")[1]

    def cell(values: list[float]) -> str:
        return f"{np.mean(values):.1f} ± {np.std(values, ddof=1) / np.sqrt(len(values)):.1f}"

    for name, runs in (("gal", gal), ("untied", untied)):
        row = f"| {name} | 0, 1 | {cell([t for t, _ in runs])} | {cell([m for _, m in runs])} |"
        assert row in section
    assert "| tied |" not in section
    (line,) = [x for x in section.splitlines() if x.startswith("- tied or untied at least")]
    assert f"MC: untied (seeds 0, 1) {cell([m for _, m in untied])} against gal (seeds 0, 1) " \
        f"{cell([m for _, m in gal])}" in line
    assert verdict in line
    assert line.endswith("not met" if verdict.startswith("gal beats") else "**met**")
    (line,) = [x for x in section.splitlines() if x.startswith("- moonshot")]
    assert ": untied (seeds 0, 1) " in line
    assert line.endswith("**met**" if moonshot == "met" else "not met")
    # a side with more seeds than the other names its own: gal under seeds 0–2
    _put_ptb_record(results, "gal", *gal[0], seed=2)
    section = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"].split(": across seeds")[1]
    (line,) = [x for x in section.splitlines() if x.startswith("- tied or untied at least")]
    assert "against gal (seeds 0–2) " in line and "untied (seeds 0, 1) " in line
    # one seed per variant: no across-seeds section at all
    single = tmp_path / "single"
    _put_ptb_record(single / "results", "gal", 101.7, 99.3)
    assert ": across seeds" not in build_pages(single)[single / "docs/results/ptb.md"]


def test_ptb_across_seeds_differences_against_zaremba_and_gal(tmp_path: Path) -> None:
    """Across seeds, every variant's mean test perplexity less zaremba's and gal's, ± the
    combined standard error √(se² + se_ref²) (numpy's standard errors here), "beats" / "behind"
    only beyond it; a row of another law joins the same section, named by its law."""
    import numpy as np

    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    runs = {("zaremba", "bernoulli"): ((97.6, 98.0), (99.0, 99.5)),
            ("gal", "bernoulli"): ((101.7, 99.3), (100.6, 98.2)),
            ("untied", "bernoulli"): ((101.5, 98.1), (102.3, 98.8)),
            ("tied", "inverse_nakagami"): ((101.9, 98.8), (101.2, 97.0))}
    for (variant, law), values in runs.items():
        for seed, (test, mc) in enumerate(values):
            _put_ptb_record(results, variant, test, mc, seed=seed, law=law)
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    (section,) = page.split(": across seeds")[1:]
    assert "| variant | − zaremba, mean-scaled | − zaremba, MC | − gal, mean-scaled | " \
        "− gal, MC |" in section

    def mean_se(values: list[float]) -> tuple[float, float]:
        return float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(len(values)))

    def cell(row: tuple[str, str], ref: tuple[str, str], column: int) -> str:
        (mean, se), (ref_mean, ref_se) = (mean_se([v[column] for v in runs[k]])
                                          for k in (row, ref))
        combined = float(np.sqrt(se**2 + ref_se**2))
        verdict = ("beats" if ref_mean - mean > combined else
                   "behind" if mean - ref_mean > combined else "level")
        return f"{mean - ref_mean:+.2f} ± {combined:.2f}, {verdict}".replace("-", "−")

    zaremba, gal = ("zaremba", "bernoulli"), ("gal", "bernoulli")
    for row, name in (((("untied", "bernoulli")), "untied"),
                      (("tied", "inverse_nakagami"), "tied (inverse_nakagami)")):
        cells = [cell(row, ref, column) for ref in (zaremba, gal) for column in (0, 1)]
        assert f"| {name} | {' | '.join(cells)} |" in section
    assert f"| gal | {cell(gal, zaremba, 0)} | {cell(gal, zaremba, 1)} | — | — |" in section
    # the hand check of one cell: untied's MC mean 98.45 ± 0.35 against gal's 98.75 ± 0.55
    assert "| untied | " in section and "| −0.30 ± 0.65, level |" in section
    zaremba_row = f"| zaremba | — | — | {cell(zaremba, gal, 0)} | {cell(zaremba, gal, 1)} |"
    assert zaremba_row in section and "beats" in zaremba_row
    assert cell(("untied", "bernoulli"), zaremba, 0).endswith("behind")
    assert "| tied (inverse_nakagami) | 0, 1 |" in section


def test_ptb_seed_paired_differences_cancel_what_a_seed_shares(tmp_path: Path) -> None:
    """Across seeds, each variant against zaremba and gal (gal against zaremba, not back) and a
    law against Bernoulli, over the seeds both finished: the mean of the per-seed differences ±
    scipy's standard error of them, a verdict only beyond it. A variant a hair below gal on every
    seed beats it paired while the unpaired comparison, swamped by how the seeds differ, is
    level."""
    import numpy as np
    from scipy import stats

    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    gal = {0: (101.0, 99.0), 1: (104.0, 102.5), 2: (102.2, 100.1), 3: (106.0, 103.0)}
    untied = {0: (100.6, 98.6), 1: (103.5, 102.0), 2: (101.9, 99.6)}  # seed 3 not run
    tied = {0: (101.2, 99.9), 1: (104.5, 102.1), 2: (102.0, 101.2), 3: (105.1, 103.2)}
    heavy = {0: (101.0, 99.5), 1: (104.0, 102.0), 2: (101.9, 100.9), 3: (105.0, 102.8)}
    for seed in range(4):
        _put_ptb_record(results, "gal", *gal[seed], seed=seed)
        _put_ptb_record(results, "tied", *tied[seed], seed=seed)
        _put_ptb_record(results, "tied", *heavy[seed], seed=seed, law="inverse_nakagami")
        if seed in untied:
            _put_ptb_record(results, "untied", *untied[seed], seed=seed)
    _put_ptb_record(results, "zaremba", 98.0, 97.0, seed=0)  # one seed: no pairs
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    (section,) = page.split(": across seeds")[1:]
    lines = [x for x in section.splitlines() if x.startswith("- ") and " − " in x
             and " (seeds " in x]  # the paired lines: the target lines name seeds too

    def cell(mine: dict[int, tuple[float, float]], ref: dict[int, tuple[float, float]],
             column: int) -> str:
        seeds = sorted(set(mine) & set(ref))
        a, b = [mine[s][column] for s in seeds], [ref[s][column] for s in seeds]
        d = np.subtract(a, b)
        se = float(stats.sem(d))
        verdict = "beats" if -d.mean() > se else "behind" if d.mean() > se else "level"
        return f"{d.mean():+.2f} ± {se:.2f}, {verdict}".replace("-", "−")

    def line(name: str, ref_name: str, mine, ref, seeds: str) -> str:
        return (f"- {name} − {ref_name} (seeds {seeds}): mean-scaled {cell(mine, ref, 0)}; "
                f"MC {cell(mine, ref, 1)}")

    assert lines == [
        line("tied", "gal", tied, gal, "0–3"),
        line("tied (inverse_nakagami)", "gal", heavy, gal, "0–3"),
        line("tied (inverse_nakagami)", "tied", heavy, tied, "0–3"),
        line("untied", "gal", untied, gal, "0–2")]
    # by hand: untied is 0.4, 0.5, 0.3 below gal (mean-scaled), 0.40 ± 0.06 paired: beats;
    # unpaired it is level, the seeds' spread (≈ ± 0.9 each) swamping the 0.4
    assert "- untied − gal (seeds 0–2): mean-scaled −0.40 ± 0.06, beats" in section
    (unpaired,) = [x for x in section.splitlines() if x.startswith("| untied | −")]
    assert unpaired.startswith("| untied | −1.30 ± 1.38, level |")
    assert "zaremba" not in "".join(lines)


@pytest.mark.parametrize(("heavy_mc", "verdict"), [
    ((97.6, 97.8, 97.7), "beats"),   # clearly below Bernoulli's MC mean
    ((98.7, 98.2, 99.2), "level"),   # within the combined standard error
])
def test_ptb_another_law_is_compared_with_bernoulli_at_the_same_variant(
        tmp_path: Path, heavy_mc: tuple[float, ...], verdict: str) -> None:
    """Across seeds, a variant run with another noise law gets one line against the same
    variant with Bernoulli noise, under each evaluation, with the combined standard error
    (numpy's standard errors here) and a verdict only beyond it."""
    import numpy as np

    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    bernoulli = ((101.85, 98.75), (101.71, 98.61), (102.10, 99.06))
    heavy_test = (101.87, 101.27, 101.86)
    for seed, (test, mc) in enumerate(bernoulli):
        _put_ptb_record(results, "tied", test, mc, seed=seed)
        _put_ptb_record(results, "tied", heavy_test[seed], heavy_mc[seed], seed=seed,
                        law="inverse_nakagami")
    _put_ptb_record(results, "untied", 101.5, 98.1, seed=0, law="rayleigh")  # one seed only
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    (section,) = page.split(": across seeds")[1:]
    (line,) = [x for x in section.splitlines()
               if x.startswith("- tied (inverse_nakagami) − tied:")]

    def difference(mine: tuple[float, ...], ref: tuple[float, ...]) -> tuple[float, float]:
        se = [np.std(v, ddof=1) / np.sqrt(len(v)) for v in (mine, ref)]
        return float(np.mean(mine) - np.mean(ref)), float(np.hypot(*se))

    d, e = difference(heavy_test, tuple(t for t, _ in bernoulli))
    assert "mean-scaled " + f"{d:+.2f} ± {e:.2f}, level".replace("-", "−") in line
    d, e = difference(heavy_mc, tuple(m for _, m in bernoulli))
    assert (d < -e) == (verdict == "beats")
    assert line.endswith(f"MC {d:+.2f} ± {e:.2f}, {verdict}".replace("-", "−"))
    assert "untied (rayleigh)" not in section


def test_ptb_dropout_rate_chosen_on_validation(tmp_path: Path) -> None:
    """Where a variant ran at several dropout rates (same seed and settings otherwise), ✔ marks
    the rate of lowest validation perplexity under each evaluation, and the level-with-gal line
    compares the chosen rates' test perplexities of the variants run at every rate only."""
    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    # (test, MC test) by rate; the records' validation perplexities are these + 4
    runs = {"gal": {0.2: (101.7, 99.3), 0.3: (100.9, 99.8)},
            "untied": {0.2: (101.5, 98.1), 0.3: (102.0, 97.5)},
            "tied": {0.2: (90.0, 89.0)}}  # one rate: not in the verdict, no ✔
    for variant, by_rate in runs.items():
        for rate, (test, mc) in by_rate.items():
            _put_ptb_record(results, variant, test, mc, dropout=rate)
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    (section,) = page.split(": dropout rate chosen on validation")[1:]
    # gal: mean-scaled valid 104.9 at 0.3 < 105.7, MC valid 103.3 at 0.2 < 103.8
    assert "| gal | 0.2 | 105.7 | 101.7 | 103.3 ✔ | 99.3 |" in section
    assert "| gal | 0.3 | 104.9 ✔ | 100.9 | 103.8 | 99.8 |" in section
    assert "| untied | 0.2 | 105.5 ✔ | 101.5 | 102.1 | 98.1 |" in section
    assert "| untied | 0.3 | 106.0 | 102.0 | 101.5 ✔ | 97.5 |" in section
    assert "| tied | 0.2 | 94.0 | 90.0 | 93.0 | 89.0 |" in section
    (line,) = [x for x in section.splitlines() if x.startswith("- tied or untied at least")]
    # chosen: gal 100.9 (p 0.3) / MC 99.3 (p 0.2); untied 101.5 (p 0.2) / MC 97.5 (p 0.3)
    assert "mean-scaled: untied 101.5 against gal 100.9; MC: untied 97.5 against gal 99.3" in line
    assert line.endswith("**met**")
    # every variant at one rate: no such section
    single = tmp_path / "single"
    _put_ptb_record(single / "results", "gal", 101.7, 99.3)
    _put_ptb_record(single / "results", "gal", 101.7, 99.3, seed=1, dropout=0.3)
    assert ": dropout rate chosen" not in build_pages(single)[single / "docs/results/ptb.md"]


@pytest.mark.parametrize(("field", "bad", "message"), [
    ("epochs", 0, "epochs must be an int >= 1, got 0"),
    ("bptt", 0, "bptt must be an int >= 1, got 0"),
    ("train_tokens", -1, "train_tokens must be an int >= 0, got -1"),
    ("lr", 0.0, r"lr must be a finite number > 0, got 0.0"),
    ("lr_decay", 1.5, r"lr_decay must be a number in \(0, 1\], got 1.5"),
    ("init_scale", -0.1, r"init_scale must be a finite number >= 0, got -0.1"),
    ("clip", math.nan, "clip must be a finite number > 0, got nan"),
    ("dropout", 1.0, r"dropout must be a number in \(0, 1\), got 1.0"),
])
def test_settings_refuse_values_that_cannot_train(field: str, bad: object, message: str) -> None:
    """Each of these trained (or failed in torch) before the settings checked their numbers."""
    with pytest.raises(ValueError, match=message):
        PTBSettings(**{field: bad})
    for preset in PTB_SIZES.values():  # the presets stay valid
        PTBSettings(**{f: getattr(preset, f) for f in ("epochs", "lr", "lr_decay", "dropout")})


def test_ptb_a_variant_with_options_is_paired_with_the_same_variant_without_them(
        tmp_path: Path) -> None:
    """Across seeds, tied + weight against tied and untied + recurrent against untied (law
    kept), over the seeds both finished: the mean of the per-seed differences ± scipy's
    standard error of them."""
    import numpy as np
    from scipy import stats

    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    tied = {0: (102.0, 99.0), 1: (101.7, 98.6), 2: (103.1, 100.1), 3: (101.4, 98.3)}
    weight = {0: (101.4, 98.9), 1: (101.0, 98.0), 2: (102.2, 99.7)}
    heavy = {0: (101.9, 98.8), 1: (101.3, 98.2)}
    heavy_weight = {0: (101.0, 98.1), 1: (101.1, 98.0)}
    for seed in tied:
        _put_ptb_record(results, "tied", *tied[seed], seed=seed)
        _put_ptb_record(results, "untied", *tied[seed], seed=seed)
        if seed in weight:
            _put_ptb_record(results, "tied", *weight[seed], seed=seed, weight_noise=True)
            _put_ptb_record(results, "untied", *weight[seed], seed=seed, recurrent_noise=True)
        if seed in heavy:
            _put_ptb_record(results, "gal", *tied[seed], seed=seed)
            _put_ptb_record(results, "gal", *weight[seed], seed=seed, weight_noise=True)
            for data, extra in ((heavy, {}), (heavy_weight, {"weight_noise": True})):
                _put_ptb_record(results, "tied", *data[seed], seed=seed,
                                law="inverse_nakagami", **extra)
    page = build_pages(tmp_path)[tmp_path / "docs/results/ptb.md"]
    (section,) = page.split(": across seeds")[1:]

    def line(name: str, ref: str, mine: dict, theirs: dict, seeds_text: str) -> str:
        seeds = sorted(set(mine) & set(theirs))
        cells = []
        for column, label in ((0, "mean-scaled"), (1, "MC")):
            d = np.subtract([mine[k][column] for k in seeds], [theirs[k][column] for k in seeds])
            se = float(stats.sem(d))
            verdict = "beats" if -d.mean() > se else "behind" if d.mean() > se else "level"
            mean = f"{d.mean():+.2f}".replace("-", "−")
            cells.append(f"{label} {mean} ± {se:.2f}, {verdict}")
        return f"- {name} − {ref} (seeds {seeds_text}): {'; '.join(cells)}"

    lines = [x for x in section.splitlines() if x.startswith("- ") and " − " in x
             and " (seeds " in x]  # the paired lines: the target lines name seeds too
    assert line("tied + weight", "tied", weight, tied, "0–2") in lines
    assert line("untied + recurrent", "untied", weight, tied, "0–2") in lines
    # by hand: tied + weight is 0.6, 0.7, 0.9 below tied, mean-scaled: −0.73 ± 0.09, beats
    assert "- tied + weight − tied (seeds 0–2): mean-scaled −0.73 ± 0.09, beats" in section
    # the law is kept: the heavy-tailed tied + weight against the heavy-tailed tied
    assert line("tied + weight (inverse_nakagami)", "tied (inverse_nakagami)", heavy_weight,
                heavy, "0, 1") in lines
    # gal + weight against gal is both a reference pair and an options pair: listed once
    assert [x for x in lines if x.startswith("- gal + weight − gal ")] == [
        line("gal + weight", "gal", {k: weight[k] for k in heavy}, tied, "0, 1")]
