#!/usr/bin/python3
"""How often the finding a reader sees holds the lesion (reported only, CARD.md).

    /usr/bin/python3 models/mammo/ellipse_hit.py /tmp/mammo/lp-s1     # train.py --out folders holding oof.npz

The issue measures the map's peak cell; the viewer shows an ellipse instead: the 4-connected cells at >= half the
peak, their bounding box on the stored image as an axis-aligned ellipse (src/inference/mammogram.ts mammoPeak). For
each film with a marked mass, this says whether a mass centre lies inside that ellipse on the out-of-fold maps.
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402


def drawn_ellipse(cam, g):
    """(cx, cy, rx, ry) on the stored image, as mammoPeak draws it."""
    n = cam.shape[0]
    k = int(np.argmax(cam))
    thr = cam.flat[k] * 0.5
    seen = {divmod(k, n)}
    stack = list(seen)
    while stack:
        a, b = stack.pop()
        for x, y in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):
            if 0 <= x < n and 0 <= y < n and (x, y) not in seen and cam[x, y] >= thr:
                seen.add((x, y))
                stack.append((x, y))
    r0, r1 = min(a for a, _ in seen), max(a for a, _ in seen)
    c0, c1 = min(b for _, b in seen), max(b for _, b in seen)
    cell = T.SIZE / n
    pa, pb = T.to_source(g, c0 * cell, r0 * cell), T.to_source(g, (c1 + 1) * cell, (r1 + 1) * cell)
    (xa, xb), (ya, yb) = sorted((pa[0], pb[0])), sorted((pa[1], pb[1]))
    return (xa + xb) / 2, (ya + yb) / 2, (xb - xa) / 2, (yb - ya) / 2


def main():
    _, _, geo, meta = T.load()
    for run in sys.argv[1:]:
        cams = np.load(os.path.join(run, 'oof.npz'))['c']
        hits, areas = [], []
        for i, m in enumerate(meta):
            circles = [c for c in m['circles'] if c['class'] in T.MASS]
            if not circles:
                continue
            cx, cy, rx, ry = drawn_ellipse(cams[i], geo[i])
            hits.append(any(((c['x'] - cx) / rx) ** 2 + ((c['y'] - cy) / ry) ** 2 <= 1 for c in circles))
            areas.append(math.pi * rx * ry / (512 * 512))
        print(f'{run}: mass centre inside the drawn ellipse in {sum(hits)} of {len(hits)} ({sum(hits) / len(hits):.0%}); '
              f'ellipse area median {np.median(areas):.1%} of the film, 90th percentile {np.percentile(areas, 90):.1%}')


if __name__ == '__main__':
    main()
