"""Soft Actor-Critic from any mix of camera images and vector sensors, serial or with an
asynchronous learner; the replay buffer and the agent are built from the observation space.

Reading order: config -> observation -> normalizer -> models -> augment -> losses -> agent ->
frame_ring -> replay_buffer -> weights -> async_learner.
"""
from sac.agent import SACAgent
from sac.async_learner import AsyncLearner, LearnerConfig
from sac.config import AgentConfig, EncoderConfig, EncoderHead, Preset, get_preset
from sac.observation import ObservationLayout
from sac.replay_buffer import Batch, SharedReplayBuffer
from sac.weights import VersionedArray, WeightPublisher

__all__ = ["AgentConfig", "AsyncLearner", "Batch", "EncoderConfig", "EncoderHead", "LearnerConfig",
           "ObservationLayout", "Preset", "SACAgent", "SharedReplayBuffer", "VersionedArray", "WeightPublisher",
           "get_preset"]
