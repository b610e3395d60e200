"""The whole service on one machine: moto for AWS, our handlers in-process, real HTTP in front."""
