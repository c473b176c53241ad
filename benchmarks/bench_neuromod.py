"""asv suite mirroring the reference's neuromod_sync benchmark."""
from thermogram.neuromod import NeuromodState, NeuromodSyncConfig


class NeuromodSync:
    """``NeuromodSyncConfig.full_sync`` applied to baseline levels, and reward plus decay."""

    def setup(self):
        self.cfg = NeuromodSyncConfig.full_sync(clock=lambda: 0)
        self.local = NeuromodState.baseline()
        self.external = NeuromodState(0.9, 0.2, 0.7, 0.4)
        self.cfg.apply_sync(self.local, self.external)

    def time_apply_sync(self):
        self.cfg.apply_sync(self.local, self.external)

    # Docstrings of timed methods are set after them: asv versions a benchmark by the hash
    # of its method's source, so results stay comparable with those of earlier commits.
    time_apply_sync.__doc__ = "One full sync of local levels toward external ones."

    def time_reward_decay(self):
        self.local.reward(0.1).decay(0.05)

    time_reward_decay.__doc__ = "``reward(0.1)`` then ``decay(0.05)``."
