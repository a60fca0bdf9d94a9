"""`tinyproj prepare-imagenet`: ImageNet rescaled once, for a decoder that keeps up with a GPU.

    tinyproj prepare-imagenet /data --out /fast/imagenet256       then: --data-dir /fast/imagenet256

(tinyproj/data/imagenet_shrink.py explains why and what it writes.)
"""
from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("prepare-imagenet",
                       help="ImageNet with every image rescaled to a shorter side of 256, once",
                       description="Write a copy of ImageNet whose images have their shorter "
                       "side at --side pixels (JPEG), with the same classes and file names, so "
                       "that decoding keeps up with a GPU step. Resumable: run it again to "
                       "continue. Train on it with --data-dir OUT.")
    p.add_argument("src", help="a data folder holding imagenet/{train,val}/<class>/ (or the "
                   "ImageNet folder itself)")
    p.add_argument("--out", required=True,
                   help="data folder for the copy: writes OUT/imagenet/{train,val}/<class>/")
    p.add_argument("--side", type=int, default=256,
                   help="shorter side in pixels (default 256, as AlexNet; smaller images are "
                        "copied as they are)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding processes (default: one per CPU, at most 16; 0: this one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_prepare_imagenet)


def _cmd_prepare_imagenet(args) -> int:
    from ..data.imagenet_shrink import shrink_imagenet
    counts = shrink_imagenet(args.src, args.out, side=args.side, quality=args.quality,
                             workers=args.workers, progress=not args.no_progress)
    print(f"prepare-imagenet: {counts['resized']} resized, {counts['copied']} copied as they "
          f"were (already small), {counts['done before']} done before; train with "
          f"--data-dir {args.out}")
    return 0
