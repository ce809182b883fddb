"""ObservationLayout: which keys of a Dict space are images and which are vectors."""
from __future__ import annotations

import re

import numpy as np
import pytest
from gymnasium import spaces
from sac_fixtures import IMAGE_SHAPE, MULTI_SPACE, SCENE_SHAPE, SPACE, image_space, make_obs, vector_space

from sac.observation import ObservationLayout

pytestmark = pytest.mark.timeout(10)


def test_uint8_rank_3_boxes_of_rgb_stacks_are_images_and_every_other_box_is_a_vector():
    space = spaces.Dict({"wrist": image_space(), "scene": image_space(SCENE_SHAPE), "range": vector_space(3),
                         "force_window": spaces.Box(-50, 50, (4, 6), np.float64),
                         "contacts": spaces.Box(0, 1, (2,), np.uint8)})
    layout = ObservationLayout.from_space(space)
    assert layout.images == {"scene": SCENE_SHAPE, "wrist": IMAGE_SHAPE}  # the space's (sorted) order
    assert layout.vectors == {"contacts": (2,), "force_window": (4, 6), "range": (3,)}
    assert layout.vector_dim == 2 + 24 + 3
    assert layout.keys == ["scene", "wrist", "contacts", "force_window", "range"]


@pytest.mark.parametrize("shape", [(4, 32, 40), (32, 40, 3), (1, 32, 40)], ids=["rgba", "channels-last", "grey"])
def test_a_uint8_rank_3_key_that_is_not_rgb_frames_is_refused_naming_the_key(shape):
    space = spaces.Dict({"depth": image_space(shape)})
    with pytest.raises(ValueError, match=re.escape(f"observation key 'depth' is a uint8 image of shape {shape}: "
                                                   f"expected channel-first stacked RGB frames")):
        ObservationLayout.from_space(space)


def test_a_space_that_is_not_a_dict_of_boxes_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="not a gymnasium.spaces.Dict; wrap it"):
        ObservationLayout.from_space(vector_space(3))
    with pytest.raises(ValueError, match=re.escape("observation key 'mode' has space Discrete(3)")):
        ObservationLayout.from_space(spaces.Dict({"mode": spaces.Discrete(3), "range": vector_space(3)}))


def test_check_names_the_missing_unknown_or_misshapen_key():
    layout = ObservationLayout.from_space(SPACE)
    layout.check(make_obs(0), "obs")  # fits
    with pytest.raises(ValueError, match=re.escape("missing ['proprioception'], unknown ['range']")):
        layout.check({"image": make_obs(0)["image"], "range": np.zeros(3)}, "obs")
    with pytest.raises(ValueError, match=re.escape("obs['image'] has shape (32, 40, 6) dtype uint8, expected")):
        layout.check({**make_obs(0), "image": make_obs(0)["image"].transpose(1, 2, 0)}, "obs")


def test_differences_name_each_key_that_differs_and_nothing_when_equal():
    mine = ObservationLayout.from_space(MULTI_SPACE)
    assert mine.differences(mine.describe()) == []
    theirs = ObservationLayout.from_space(SPACE).describe()
    assert mine.differences(theirs) == [
        "'proprioception': vector float32 (5,) there, absent here",
        "'scene': absent there, image uint8 (3, 36, 44) here",
        "'range': absent there, vector float32 (3,) here"]
