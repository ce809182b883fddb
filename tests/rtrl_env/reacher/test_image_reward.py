"""The seed's image reward: red pixels, weighted towards the centre, scaled and clipped."""
import re

import numpy as np
import pytest

from rtrl_env.reacher.image_reward import ImageRewardConfig, centre_weights, image_reward, red_mask

pytestmark = pytest.mark.timeout(30)
RED = (220, 20, 20)


def _image_with_patch(row, col, size=10, colour=RED, shape=(120, 160)):
    img = np.full((*shape, 3), 40, np.uint8)  # dark grey "monitor"
    img[row:row + size, col:col + size] = colour
    return img


def test_no_red_pays_nothing():
    assert image_reward(np.full((120, 160, 3), 40, np.uint8)) == 0.0


def test_centred_patch_pays_more_than_the_same_patch_off_centre():
    centre = image_reward(_image_with_patch(55, 75))
    near = image_reward(_image_with_patch(55, 95))     # 20 px right of the centre
    corner = image_reward(_image_with_patch(2, 2))     # beyond the default falloff (50 px)
    assert centre > near > corner == 0.0
    assert near == pytest.approx(0.6 * centre, rel=0.1)  # weight 1 - 20/50 there


def test_reward_grows_with_the_red_area_and_clips_at_max_reward():
    small = image_reward(_image_with_patch(56, 76, size=6))
    large = image_reward(_image_with_patch(54, 74, size=12))
    assert 0 < small < large
    assert image_reward(np.full((120, 160, 3), RED, np.uint8)) == 4.0
    cfg = ImageRewardConfig(max_reward=0.5)
    assert image_reward(_image_with_patch(50, 70, size=20), cfg) == 0.5


def test_reward_formula_matches_a_hand_computation():
    img = _image_with_patch(50, 70, size=10)
    weights = centre_weights(120, 160, 0.5)
    expected = 400.0 * weights[50:60, 70:80].sum() / (120 * 160)
    assert image_reward(img) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("colour", [(40, 200, 40), (40, 40, 200), (255, 255, 255), (200, 120, 120)],
                         ids=["green", "blue", "white", "pink"])
def test_other_colours_are_not_target(colour):
    assert not red_mask(_image_with_patch(55, 75, colour=colour)).any()


def test_centre_weights_are_one_at_the_centre_and_zero_at_the_corners():
    w = centre_weights(120, 160, falloff=1.0)
    assert w.shape == (120, 160) and w.dtype == np.float32
    assert w[59:61, 79:81].min() > 0.98
    assert w[0, 0] < 0.02 and w[-1, -1] < 0.02


def test_wrong_image_is_refused_with_the_expected_format():
    with pytest.raises(ValueError, match=re.escape("expected uint8 (H, W, 3) RGB")):
        image_reward(np.zeros((120, 160, 3), np.float64))
    with pytest.raises(ValueError, match=re.escape("shape (3, 120, 160)")):
        image_reward(np.zeros((3, 120, 160), np.uint8))


def test_config_rejects_bad_colour_ranges_and_scales():
    with pytest.raises(ValueError, match="red_low"):
        ImageRewardConfig(red_low=(300, 0, 0))
    with pytest.raises(ValueError, match="swap them"):
        ImageRewardConfig(red_low=(200, 0, 0), red_high=(100, 50, 50))
    with pytest.raises(ValueError, match=re.escape("ImageRewardConfig.scale=0")):
        ImageRewardConfig(scale=0)
