"""Triton Python-backend model that runs the version directory's model.onnx on ONNX Runtime CPU.

Copied into each version directory by serve.py; runs inside Triton's Python-backend stub
(the test server environment), never imported by edge_yolo. Dynamic batching hands
`execute` several requests at once: they run as one batch and are split back. A config
parameter `test_hang_s` makes every request wait that long first (a hung server, for tests).
"""

import json
import os
import time

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        options = ort.SessionOptions()
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.hang_s = float(config.get("parameters", {}).get("test_hang_s", {}).get("string_value", 0))

    def execute(self, requests: list) -> list:
        time.sleep(self.hang_s)
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        output = self.session.run([self.output_name], {self.input_name: np.concatenate(arrays)})[0]
        responses, start = [], 0
        for array in arrays:
            part = output[start : start + len(array)]
            start += len(array)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(self.output_name, part)]))
        return responses
