"""rlcourse.algos.pixels: spatial softmax, DrQ's random shift and the encoder, on inputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from rlcourse.algos.pixels import PixelEncoder, SpatialSoftmax, image_grid, random_shift
from rlcourse.core.errors import RLCourseError


def test_spatial_softmax_returns_the_coordinates_of_a_bright_spot():
    h, w = 9, 13
    maps = torch.zeros(2, 3, h, w)
    spots = [(0, 0), (4, 6), (8, 12), (2, 10), (7, 1), (5, 5)]
    for k, (i, j) in enumerate(spots):
        maps[k // 3, k % 3, i, j] = 50.0  # a spot far brighter than the rest
    out = SpatialSoftmax(h, w, temperature=1.0)(maps).reshape(2, 3, 2)
    for k, (i, j) in enumerate(spots):
        x, y = out[k // 3, k % 3]
        assert x.item() == pytest.approx(-1 + 2 * j / (w - 1), abs=1e-4)  # x runs along the width
        assert y.item() == pytest.approx(-1 + 2 * i / (h - 1), abs=1e-4)  # y along the height


def test_spatial_softmax_of_a_flat_map_is_the_centre_and_temperature_sharpens():
    flat = SpatialSoftmax(5, 7)(torch.zeros(1, 1, 5, 7))
    assert torch.allclose(flat, torch.zeros(1, 2), atol=1e-6)
    maps = torch.zeros(1, 1, 5, 5)
    maps[0, 0, 4, 4] = 1.0  # a weak spot: at T = 1 the keypoint is pulled towards the centre
    soft = SpatialSoftmax(5, 5, temperature=1.0, learn_temperature=False)(maps)
    sharp = SpatialSoftmax(5, 5, temperature=0.01, learn_temperature=False)(maps)
    assert soft[0, 0] < sharp[0, 0] and sharp[0, 0].item() == pytest.approx(1.0, abs=1e-3)
    u, v = image_grid(2, 3)
    assert u.tolist() == [-1, 0, 1, -1, 0, 1] and v.tolist() == [-1, -1, -1, 1, 1, 1]
    with pytest.raises(RLCourseError):
        SpatialSoftmax(4, 4)(torch.zeros(1, 1, 5, 5))


def test_random_shift_keeps_the_shape_and_moves_content_by_at_most_the_pad():
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(64, 3, 21, 21, dtype=torch.uint8)
    img[:, :, 10, 10] = 255  # one bright pixel in the middle
    pad = 4
    out = random_shift(img, pad, generator=g)
    assert out.shape == img.shape and out.dtype == torch.uint8
    moves = set()
    for k in range(img.shape[0]):
        where = (out[k, 0] == 255).nonzero().tolist()
        assert len(where) == 1  # the content moved, nothing was smeared or lost
        (i, j), = where
        assert abs(i - 10) <= pad and abs(j - 10) <= pad
        assert (out[k, 0] == out[k, 1]).all() and (out[k, 1] == out[k, 2]).all()  # channels move together
        moves.add((i - 10, j - 10))
    assert len(moves) > 20  # independent offsets per image
    assert random_shift(img, 0) is img
    with pytest.raises(RLCourseError):
        random_shift(img, -1)


def test_random_shift_repeats_the_border_instead_of_inventing_black():
    img = torch.full((8, 1, 6, 6), 200, dtype=torch.uint8)
    assert (random_shift(img, 3, generator=torch.Generator().manual_seed(1)) == 200).all()


def test_the_encoder_takes_two_views_side_by_side():
    """A 32 x 64 montage: the keypoints span the whole width, so the same spot in the left view and in the right view
    gives the same row and keypoints in opposite halves (convolutions set to pass their input's centre through)."""
    enc = PixelEncoder(channels=3, size=(32, 64), feature_dim=16, width=4)
    frames = torch.zeros((2, 3, 32, 64), dtype=torch.uint8)
    frames[0, :, 12:16, 12:16] = frames[1, :, 12:16, 44:48] = 255  # one spot, 32 columns apart
    assert enc(frames).shape == (2, 16)
    with torch.no_grad():
        for conv in enc.convs[::2]:
            conv.weight.zero_(), conv.bias.zero_()
            conv.weight[:, :, 1, 1] = 1.0
        enc.keypoints.log_temperature.fill_(math.log(0.01))  # nearly the arg-max
    (u_left, v_left), (u_right, v_right) = enc.keypoints_of(frames)[:, 0]
    assert u_left < -0.2 and u_right > 0.2 and torch.isclose(v_left, v_right)


def test_the_encoder_maps_uint8_frames_to_normalised_features_and_exposes_its_keypoints():
    enc = PixelEncoder(channels=3, size=64, feature_dim=32)
    frames = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    f = enc(frames)
    assert f.shape == (5, 32)
    assert torch.allclose(f.mean(-1), torch.zeros(5), atol=1e-5)  # layer-normalised
    kp = enc.keypoints_of(frames)
    assert kp.shape == (5, enc.width, 2) and kp.abs().max() <= 1.0
    f.sum().backward()
    assert enc.convs[0].weight.grad is not None and enc.keypoints.log_temperature.grad is not None
