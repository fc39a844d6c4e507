import torch


def build():
    raise RuntimeError("dataset path /nope does not exist")


build()
