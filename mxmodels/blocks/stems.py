"""Network stems shared by the ResNet-style families (CRU-Net, AFF, ATAC)."""
from mxnet.gluon import nn


def add_imagenet_stem(seq, channels=64, pool=True):
    """7x7/2 conv, BN, ReLU (and the 3x3/2 max-pool) of ResNet v1/v1b; returns its width."""
    seq.add(nn.Conv2D(channels, 7, 2, 3, use_bias=False, in_channels=3), nn.BatchNorm(in_channels=channels),
            nn.Activation("relu"))
    if pool:
        seq.add(nn.MaxPool2D(3, 2, 1))
    return channels


def add_cifar_stem(seq, width):
    """Affine-free input BN, then a 3x3/1 conv (the open-aff / open-atac CIFAR nets); returns its width."""
    seq.add(nn.BatchNorm(scale=False, center=False, in_channels=3),
            nn.Conv2D(width, 3, 1, 1, use_bias=False, in_channels=3))
    return width
