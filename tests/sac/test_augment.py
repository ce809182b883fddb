"""Random and centre crops (RAD)."""
import numpy as np
import pytest
import torch

from sac.augment import center_crop, crop_size, random_crop

pytestmark = pytest.mark.timeout(10)


def test_random_crop_takes_a_window_of_each_image_at_its_own_offset():
    images = torch.arange(4 * 2 * 10 * 12, dtype=torch.int32).reshape(4, 2, 10, 12)
    gen = torch.Generator().manual_seed(0)
    out = random_crop(images, 8, 9, gen)
    assert out.shape == (4, 2, 8, 9)
    offsets = set()
    for i in range(4):
        # Find the window: the top-left pixel identifies the offset uniquely.
        y, x = divmod(int(out[i, 0, 0, 0] - images[i, 0, 0, 0]), 12)
        torch.testing.assert_close(out[i], images[i, :, y:y + 8, x:x + 9])
        offsets.add((y, x))
    assert len(offsets) > 1


def test_crop_size_and_center_crop_agree():
    assert crop_size(120, 160, 0.01) == (116, 156)  # ceil(1.2)=2 and ceil(1.6)=2 px per side
    assert crop_size(48, 64, 0.0) == (48, 64)
    image = np.arange(3 * 6 * 8).reshape(3, 6, 8)
    np.testing.assert_array_equal(center_crop(image, 4, 6), image[:, 1:5, 1:7])


def test_an_offset_that_crops_everything_is_refused():
    with pytest.raises(ValueError, match="rad_offset=0.49 crops all"):
        crop_size(2, 2, 0.49)
