"""AdamW over flat parameters: the PLM's trained parameters become views of one buffer per
parameter group and their gradients views of another, as Megatron-LM and DeepSpeed keep them.
Clipping and AdamW then see a few tensors instead of hundreds (a CPU loops over tensors one by
one; a GPU launches per chunk of them, and the optimizer runs Python per tensor), and no
gradient is allocated again at each step (benchmarks/RESULTS.md: 13% of a step's host time at
XLM-R base's layout).

Autograd adds each step's gradient into the views, so `zero_grad` zeroes the buffers. A
flattened parameter therefore always has a gradient (zero when it got none, which AdamW would
still apply), so only the PLM is flattened, where every step of FT, SP, PCT and MPT gives
each parameter a gradient; the other parameters' gradients are set to None as usual, so a
parameter that gets none (the translator without the KL term) is never updated. The PLM's
tied and largest parameters stay whole (flattenable), and so do the prompt modules: they hold
LSTMs, whose weights cuDNN packs in a buffer of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch
from torch import nn

LARGEST = 2**22  # elements: a larger parameter stays whole


def flattenable(module: nn.Module) -> list[nn.Parameter]:
    """The module's parameters worth flattening. A tied one (the LM head's decoder and the
    input embeddings) stays whole, since safetensors saves a tied tensor only when one of its
    names covers its whole storage; so does a large one (FT's untied embedding matrix): its
    own work dwarfs what one tensor costs the host, and autograd would add its gradient into
    the buffer, one more pass over it, where it now takes the gradient as computed."""
    names = Counter(id(p) for _, p in module.named_parameters(remove_duplicate=False))
    return [p for p in module.parameters() if names[id(p)] == 1 and p.numel() <= LARGEST]


class FlatAdamW(torch.optim.AdamW):
    def __init__(self, groups: list[dict], flatten: Iterable[nn.Parameter], **options):
        """`groups` as for AdamW; the parameters in `flatten` (on their device already) are
        gathered per group into one flat parameter."""
        flatten = list(flatten)
        kind = (flatten[0].dtype, flatten[0].device) if flatten else None
        chosen = {id(p) for p in flatten if (p.dtype, p.device) == kind}  # one buffer: one kind
        self.flat: list[nn.Parameter] = []
        self.views: list[tuple[nn.Parameter, torch.Tensor, int]] = []  # parameter, grad, address
        self.others: list[nn.Parameter] = []  # zeroed as torch does
        flat_groups = []
        for group in groups:
            inside = [p for p in group["params"] if id(p) in chosen]
            outside = [p for p in group["params"] if id(p) not in chosen]
            self.others += outside
            flat_groups.append({**group, "params": self._gathered(inside) + outside})
        super().__init__(flat_groups, **options)

    def _gathered(self, parameters: list[nn.Parameter]) -> list[nn.Parameter]:
        if not parameters:
            return []
        data = torch.cat([p.detach().reshape(-1) for p in parameters])
        grad = torch.zeros_like(data)
        offset = 0
        for parameter in parameters:
            end = offset + parameter.numel()
            parameter.data = data[offset:end].view_as(parameter)
            parameter.grad = grad[offset:end].view_as(parameter)
            self.views.append((parameter, parameter.grad, parameter.data_ptr()))
            offset = end
        flat = nn.Parameter(data)
        flat.grad = grad
        self.flat.append(flat)
        return [flat]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The flat gradients zeroed in place (the PLM's gradients are views of them)."""
        for flat in self.flat:
            flat.grad.zero_()
        for parameter in self.others:
            if set_to_none:
                parameter.grad = None
            elif parameter.grad is not None:
                parameter.grad.zero_()

    def intact(self, model: nn.Module) -> bool:
        """Whether every flattened parameter is still the model's, still its view and still has
        its gradient view: a parameter moved (model.to) or replaced (load_state_dict with
        assign=True) or a gradient set to None elsewhere would leave AdamW updating a buffer
        the model no longer reads."""
        held = {id(parameter) for parameter in model.parameters()}
        return all(
            id(parameter) in held and parameter.grad is grad and parameter.data_ptr() == address
            for parameter, grad, address in self.views
        )
