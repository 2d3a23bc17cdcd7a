"""Redis queues: the collector and the queue layouts (Laravel, Sidekiq, RQ…) it reads."""
