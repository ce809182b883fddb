"""Soft Actor-Critic from pixels and proprioception, serial or with an asynchronous learner.

Reading order: config -> models -> augment -> losses -> agent -> replay_buffer -> weights ->
async_learner.
"""
from sac.agent import SACAgent
from sac.async_learner import AsyncLearner, LearnerConfig
from sac.config import AgentConfig, EncoderConfig, EncoderHead, Preset, get_preset
from sac.replay_buffer import Batch, SharedReplayBuffer
from sac.weights import VersionedArray, WeightPublisher

__all__ = ["AgentConfig", "AsyncLearner", "Batch", "EncoderConfig", "EncoderHead", "LearnerConfig",
           "Preset", "SACAgent", "SharedReplayBuffer", "VersionedArray", "WeightPublisher", "get_preset"]
