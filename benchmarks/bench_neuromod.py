"""asv suite mirroring the reference's neuromod_sync benchmark."""
from thermogram.neuromod import NeuromodState, NeuromodSyncConfig


class NeuromodSync:
    def setup(self):
        self.cfg = NeuromodSyncConfig.full_sync(clock=lambda: 0)
        self.local = NeuromodState.baseline()
        self.external = NeuromodState(0.9, 0.2, 0.7, 0.4)
        self.cfg.apply_sync(self.local, self.external)

    def time_apply_sync(self):
        self.cfg.apply_sync(self.local, self.external)

    def time_reward_decay(self):
        self.local.reward(0.1).decay(0.05)
