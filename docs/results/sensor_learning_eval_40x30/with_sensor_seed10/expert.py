import json, gymnasium, sys
sys.path.insert(0, '.')
import rtrl_env
from communicators.target.target_motion import TargetConfig
from examples.evaluate_expert import run_episodes
if __name__ == "__main__":
    env = gymnasium.make("FrankaVisualReacher2-v0", target=TargetConfig(seed=10), episode_length_s=4.0, blank_image=True, image_width=40, image_height=30)
    try:
        r = run_episodes(env, "expert", 20, 10)
    finally:
        env.close()
    json.dump(r, open('/tmp/proof13c/expert.json', 'w'), indent=2)
    print("expert mean", r["return_mean"])
