"""A chapter given a bad parameter fails in its first cells with a message naming the parameter."""
from __future__ import annotations

import papermill
import pytest
import torch

from bookbuild.execute import execute_chapter


@pytest.mark.slow
@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"model": "no-such-model-anywhere"}, "model='no-such-model-anywhere'"),
        ({"corpus": "klingon"}, "corpus='klingon' is not allowed"),
        ({"n_tokens": 0}, "n_tokens=0 must be >= 1"),
        ({"n_tokens": 10**7}, "n_tokens=10000000 asks for"),
        ({"sample_seed": 1.5}, "sample_seed=1.5 must be an integer"),
    ],
)
def test_bad_parameter_stops_chapter_one_early(parameters, message, tmp_path, tiny_model_dir):
    arguments = {"model": str(tiny_model_dir)} | parameters
    with pytest.raises(papermill.PapermillExecutionError) as error:
        execute_chapter("01_encoding", arguments, tmp_path)
    assert message in str(error.value)
    assert error.value.exec_count <= 3  # the validation cell, before any model pass


@pytest.mark.slow
@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"device": "cuda"} if not torch.cuda.is_available() else {"device": "tpu"}, "device="),
        ({"precision": "fp8"}, "precision='fp8' is not allowed; choose one of ['float32', 'bfloat16', 'auto']"),
    ],
)
def test_bad_device_or_precision_stops_chapter_five_early(parameters, message, tmp_path, tiny_model_dir):
    arguments = {"model": str(tiny_model_dir)} | parameters
    with pytest.raises(papermill.PapermillExecutionError) as error:
        execute_chapter("05_argmaxability", arguments, tmp_path)
    assert message in str(error.value)
    assert error.value.exec_count <= 4  # parameters, imports, injected parameters, the cell that loads the model
