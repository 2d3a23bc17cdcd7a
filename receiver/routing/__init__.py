"""Routes: label matchers; the channels, people and policy of a group."""
