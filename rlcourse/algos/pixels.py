"""The networks and the augmentation that pixel-based SAC is built from (chapter 8; reused by chapters 9 and 10).

Read top to bottom: the spatial softmax that turns feature maps into keypoints, DrQ's random shift, and the encoder
that puts them together. The pixel SAC backend imports them from here; the chapter's lab checks each on inputs with
known answers.

**Spatial softmax** (Levine et al., 2016). A convolutional layer produces ``C`` feature maps ``h_c(i, j)``. Treat each
as a distribution over pixels, ``p_c(i, j) = softmax_{i,j}(h_c(i, j) / T)``, and return its mean position,

    x_c = Σ_ij p_c(i, j) u_j,    y_c = Σ_ij p_c(i, j) v_i,

with ``u_j, v_i`` the column and row coordinates scaled to [-1, 1]. Each channel becomes a *keypoint*: where in the
image its feature is strongest. For a manipulation task that is exactly the kind of quantity a controller needs
(where is the gripper, where is the block), and it is differentiable, so the critic's loss can teach the features.
The temperature ``T`` is learned; as ``T -> 0`` the keypoint becomes the arg-max.

**Random shift** (DrQ, Kostrikov et al., 2021). Pad each image by ``pad`` pixels, repeating its border, and crop it
back at a random offset: the content moves by at most ``pad`` pixels in each direction. Training the critic on
shifted copies of the same observation asks its value to be invariant to small translations, a prior that is true
for a fixed camera and that cuts the data a pixel agent needs. Only images are shifted; vectors (the goal) are not.

**The encoder** (:class:`PixelEncoder`): three 3x3 convolutions of ``width`` channels (strides 2, 2, 1; ReLU), the
spatial softmax (``width`` keypoints), a linear layer to ``feature_dim`` and layer normalisation. Inputs are uint8
frames, scaled to [0, 1] inside the network, so the replay buffer stores one byte per pixel. The widths and strides
are set by what a CPU can afford: the common manipulation encoder (32, 64, 64 channels, strides 2, 1, 1) needs
many times the multiply-adds per frame (chapter 8 counts them) and leaves a feature map of 27² at 64², where strides
2, 2, 1 leave 13²; the keypoints' resolution comes from the softmax's averaging, not from the map's size. Frames
need not be square: two views side by side (the ``front_side`` camera) are one wider image, and a keypoint that
learns to follow the gripper in one view stays in that half.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rlcourse.core.errors import RLCourseError


def image_grid(height: int, width: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates scaled to [-1, 1]: ``(u, v)``, each of shape ``(height * width,)``, row-major."""
    v, u = torch.meshgrid(torch.linspace(-1.0, 1.0, height, device=device),
                          torch.linspace(-1.0, 1.0, width, device=device), indexing="ij")
    return u.reshape(-1), v.reshape(-1)


class SpatialSoftmax(nn.Module):
    """Feature maps ``(B, C, H, W)`` to keypoints ``(B, 2C)``: per channel the expected ``(x, y)`` of its softmax
    over pixels, in [-1, 1] (x along the width, y along the height), ordered ``x_1, y_1, x_2, y_2, ...``."""

    def __init__(self, height: int, width: int, temperature: float = 1.0, learn_temperature: bool = True):
        super().__init__()
        if height < 1 or width < 1 or not temperature > 0:
            raise RLCourseError(f"SpatialSoftmax needs a positive size and temperature, got {height}x{width}, "
                                f"T = {temperature}")
        u, v = image_grid(height, width)
        self.register_buffer("u", u)
        self.register_buffer("v", v)
        log_t = torch.tensor(float(temperature)).log()
        self.log_temperature = nn.Parameter(log_t) if learn_temperature else None
        if not learn_temperature:
            self.register_buffer("fixed_log_temperature", log_t)

    @property
    def temperature(self) -> torch.Tensor:
        return (self.log_temperature if self.log_temperature is not None else self.fixed_log_temperature).exp()

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        b, c, h, w = maps.shape
        if h * w != self.u.numel():
            raise RLCourseError(f"SpatialSoftmax was built for {self.u.numel()} pixels, got {h}x{w}")
        p = F.softmax(maps.reshape(b, c, h * w) / self.temperature, dim=-1)
        return torch.stack([p @ self.u, p @ self.v], dim=-1).reshape(b, 2 * c)


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ's augmentation: each image of ``(B, C, H, W)`` padded by ``pad`` (border pixels repeated) and cropped back
    at an offset drawn uniformly from ``{0, ..., 2 pad}`` in each direction, independently per image. Same shape
    and dtype; ``pad = 0`` returns the input unchanged."""
    if pad < 0:
        raise RLCourseError(f"pad must be >= 0, got {pad}")
    if pad == 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="replicate")
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device)[None, :])  # (B, H)
    cols = (dx[:, None] + torch.arange(w, device=images.device)[None, :])  # (B, W)
    idx_b = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).to(images.dtype)


class PixelEncoder(nn.Module):
    """uint8 frames ``(B, C, H, W)`` to features ``(B, feature_dim)``: three 3x3 convolutions of ``width`` channels
    (strides 2, 2, 1; ReLU between them), a spatial softmax (``width`` keypoints), a linear layer and layer
    normalisation."""

    def __init__(self, channels: int, size: int | tuple[int, int], feature_dim: int = 64, width: int = 32):
        super().__init__()
        rows, cols = (size, size) if isinstance(size, int) else size
        if min(rows, cols) < 16 or channels < 1 or width < 1 or feature_dim < 1:
            raise RLCourseError(f"PixelEncoder needs frames of at least 16² and positive sizes, got {channels} "
                                f"channels of {rows}x{cols}, width {width}, feature_dim {feature_dim}")
        self.convs = nn.Sequential(nn.Conv2d(channels, width, 3, stride=2), nn.ReLU(),
                                   nn.Conv2d(width, width, 3, stride=2), nn.ReLU(),
                                   nn.Conv2d(width, width, 3, stride=1))
        with torch.no_grad():
            h, w = self.convs(torch.zeros(1, channels, rows, cols)).shape[-2:]
        self.keypoints = SpatialSoftmax(h, w)
        self.head = nn.Sequential(nn.Linear(2 * width, feature_dim), nn.LayerNorm(feature_dim))
        self.feature_dim, self.width = feature_dim, width

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.keypoints(self.convs(frames.float() / 255.0)))

    def keypoints_of(self, frames: torch.Tensor) -> torch.Tensor:
        """The ``width`` keypoints ``(B, width, 2)`` in [-1, 1], for drawing what the encoder attends to."""
        return self.keypoints(self.convs(frames.float() / 255.0)).reshape(frames.shape[0], -1, 2)
