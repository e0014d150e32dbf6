#!/usr/bin/env python3
"""Motion capture -> COCO-17 keypoints in 3D -> 2D under virtual cameras (issue 12 training data).

    /work/venv-tf2/bin/python scripts/pose/mocap.py PYBULLET_DATA [--plot OUT.png]

PYBULLET_DATA is the `pybullet_data` folder of the PyPI `pybullet` 3.2.7 wheel (zlib licence; only
its data files are read, pybullet itself is not imported): `data/motions/humanoid3d_*.txt`
(DeepMimic motions) and `humanoid/humanoid.urdf` (the skeleton).

DeepMimic frame layout (44 numbers): duration; root position (3, y up); root, chest, neck rotations
(quaternions w, x, y, z); right hip (4), right knee (1 angle), right ankle (4), right shoulder (4),
right elbow (1), left hip (4), left knee (1), left ankle (4), left shoulder (4), left elbow (1).
Joint offsets come from the URDF, which is drawn at 4x (pybullet loads it with globalScaling 0.25);
knees and elbows turn about the joint's z axis.

The face points (nose, eyes, ears), which the skeleton does not have, are placed on a head sphere
above the neck joint; what the keypoints look like after a pose CNN is the business of the rendered
(stick figure) path, not of this file.
"""
import json
import os
import re
import sys

import numpy as np

COCO = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
        "right_knee", "left_ankle", "right_ankle"]
# DeepMimic joint order in a frame after the root position: (name, dofs)
LAYOUT = [("root", 4), ("chest", 4), ("neck", 4), ("right_hip", 4), ("right_knee", 1), ("right_ankle", 4),
          ("right_shoulder", 4), ("right_elbow", 1), ("left_hip", 4), ("left_knee", 1), ("left_ankle", 4),
          ("left_shoulder", 4), ("left_elbow", 1)]
# Labels the motions support (issue 12: walk, run, jump, punch, kick, idle, and others)
LABEL = {"walk": "walk", "run": "run", "jump": "jump", "punch": "punch", "kick": "kick", "spinkick": "kick",
         "crawl": "crawl", "cartwheel": "cartwheel", "dance_a": "dance", "dance_b": "dance",
         "getup_facedown": "getup", "getup_faceup": "getup", "backflip": "flip", "roll": "roll", "spin": "spin"}


def urdf_skeleton(path):
    """{joint: (parent, offset xyz)} at the scale the motions use (URDF x 0.25)."""
    txt = open(path, "rb").read().replace(b"\0", b"").decode("latin-1")
    out = {}
    for m in re.finditer(r'<joint name="(\w+)" type="\w+"\s*>(.*?)</joint>', txt, re.S):
        name, body = m.group(1), m.group(2)
        parent = re.search(r'<parent link\s*=\s*"(\w+)"', body).group(1)
        xyz = re.search(r'<origin[^>]*xyz\s*=\s*"([^"]+)"', body).group(1)
        out[name] = (parent, 0.25 * np.array([float(v) for v in xyz.split()]))
    return out


def quat_mat(q):
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def load_motion(path):
    j = json.load(open(path))
    f = np.array(j["Frames"], np.float64)
    assert f.shape[1] == 44, (path, f.shape)
    return f


def forward_kinematics(frame, skel):
    """World positions {joint: xyz} and rotations of one DeepMimic frame."""
    vals = frame[4:]
    local = {}
    k = 0
    for name, n in LAYOUT:
        v = vals[k:k + n]
        k += n
        local[name] = quat_mat(v) if n == 4 else rot_z(v[0])
    pos, rot = {"root": frame[1:4].copy()}, {"root": local["root"]}
    order = ["chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
             "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist"]
    for name in order:
        parent, off = skel[name]
        pos[name] = pos[parent] + rot[parent] @ off
        rot[name] = rot[parent] @ local.get(name, np.eye(3))
    return pos, rot


def coco17(frame, skel):
    """[17, 3] world positions in COCO keypoint order."""
    p, r = forward_kinematics(frame, skel)
    head = p["neck"] + r["neck"] @ np.array([0.0, 0.18, 0.0])  # head centre above the neck joint
    face = {"nose": (0.10, 0.0, 0.0), "left_eye": (0.08, 0.04, -0.035), "right_eye": (0.08, 0.04, 0.035),
            "left_ear": (0.0, 0.02, -0.08), "right_ear": (0.0, 0.02, 0.08)}
    out = []
    for name in COCO:
        if name in face:
            out.append(head + r["neck"] @ np.array(face[name]))
        else:
            out.append(p[name])
    return np.array(out)


def motion_keypoints(path, skel):
    """([frames, 17, 3] world keypoints, frame duration s)."""
    f = load_motion(path)
    return np.stack([coco17(fr, skel) for fr in f]), float(f[0, 0])


def project(kp, az, el, dist, focal, mirror=False, with_depth=False):
    """Pinhole camera looking at the pelvis centre from azimuth/elevation (radians) at `dist` metres;
    returns [frames, 17, 2] normalised image coordinates (y down, x right, in focal units), and with
    `with_depth` also [frames, 17] depths along the view axis (metres)."""
    centre = kp[:, 11:13].mean(axis=(0, 1))
    eye = centre + dist * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    fwd = (centre - eye) / np.linalg.norm(centre - eye)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    rel = kp - eye
    x, y, z = rel @ right, rel @ up, rel @ fwd
    uv = np.stack([focal * x / z, -focal * y / z], axis=-1)
    if mirror:
        uv[..., 0] = -uv[..., 0]
        swap = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]  # left <-> right
        uv, z = uv[:, swap], z[:, swap]
    return (uv, z) if with_depth else uv


# ---------------------------------------------------------------- BVH (CMU via Debian assimp-testmodels)
BVH_MAP = {  # COCO body keypoint -> joint name, per naming scheme
    "cmu": dict(left_shoulder="LeftArm", right_shoulder="RightArm", left_elbow="LeftForeArm",
                right_elbow="RightForeArm", left_wrist="LeftHand", right_wrist="RightHand", left_hip="LeftUpLeg",
                right_hip="RightUpLeg", left_knee="LeftLeg", right_knee="RightLeg", left_ankle="LeftFoot",
                right_ankle="RightFoot", head="Head", neck="Neck"),
    "mb": dict(left_shoulder="LeftShoulder", right_shoulder="RightShoulder", left_elbow="LeftElbow",
               right_elbow="RightElbow", left_wrist="LeftWrist", right_wrist="RightWrist", left_hip="LeftHip",
               right_hip="RightHip", left_knee="LeftKnee", right_knee="RightKnee", left_ankle="LeftAnkle",
               right_ankle="RightAnkle", head="Head", neck="Neck"),
}


def axis_rot(axis, deg):
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def load_bvh(path):
    """(joints [(name, parent index, offset, channels)], frames [F, channels], frame time s)."""
    tok = open(path).read().split()
    joints, stack, i = [], [], 0
    while tok[i] != "MOTION":
        t = tok[i]
        if t in ("ROOT", "JOINT", "End"):
            name = tok[i + 1] if t != "End" else joints[stack[-1]][0] + "_end"
            joints.append([name, stack[-1] if stack else -1, None, []])
            i += 2
        elif t == "{":
            stack.append(len(joints) - 1)
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif t == "OFFSET":
            joints[stack[-1]][2] = np.array([float(v) for v in tok[i + 1:i + 4]])
            i += 4
        elif t == "CHANNELS":
            n = int(tok[i + 1])
            joints[stack[-1]][3] = tok[i + 2:i + 2 + n]
            i += 2 + n
        else:
            i += 1
    n_frames = int(tok[tok.index("Frames:") + 1])
    dt = float(tok[tok.index("Time:") + 1])
    start = tok.index("Time:") + 2
    n_ch = sum(len(j[3]) for j in joints)
    frames = np.array(tok[start:start + n_frames * n_ch], np.float64).reshape(n_frames, n_ch)
    return joints, frames, dt


def bvh_positions(joints, frames):
    """World positions [F, joints, 3] by forward kinematics (rotation channels applied in file order)."""
    F = len(frames)
    pos = np.zeros((F, len(joints), 3))
    rot = np.zeros((F, len(joints), 3, 3))
    col = 0
    cols = []
    for j in joints:
        cols.append(col)
        col += len(j[3])
    for f in range(F):
        for k, (name, parent, off, ch) in enumerate(joints):
            R = np.eye(3)
            t = np.zeros(3)
            for c, v in zip(ch, frames[f, cols[k]:cols[k] + len(ch)]):
                if c.endswith("position"):
                    t["XYZ".index(c[0])] = v
                else:
                    R = R @ axis_rot(c[0], v)
            if parent < 0:
                pos[f, k], rot[f, k] = off + t, R
            else:
                pos[f, k] = pos[f, parent] + rot[f, parent] @ off
                rot[f, k] = rot[f, parent] @ R
    return pos


def face_points(head, neck, lhip, rhip, unit):
    """Nose, eyes, ears around a head point: forward is perpendicular to the hip line and to up."""
    up = head - neck
    up /= np.linalg.norm(up, axis=-1, keepdims=True) + 1e-9
    side = lhip - rhip
    side /= np.linalg.norm(side, axis=-1, keepdims=True) + 1e-9
    fwd = np.cross(side, up)
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True) + 1e-9
    u = unit[..., None]
    return [head + u * (0.10 * fwd), head + u * (0.08 * fwd + 0.04 * up + 0.035 * side),
            head + u * (0.08 * fwd + 0.04 * up - 0.035 * side), head + u * (0.02 * up + 0.08 * side),
            head + u * (0.02 * up - 0.08 * side)]


def bvh_keypoints(path, every=1):
    """([frames, 17, 3] keypoints in metres, y up, frame time s) of a BVH file (CMU or MotionBuilder names)."""
    joints, frames, dt = load_bvh(path)
    frames = frames[::every]
    names = [j[0] for j in joints]
    scheme = BVH_MAP["cmu" if "LeftUpLeg" in names else "mb"]
    pos = bvh_positions(joints, frames)
    g = {k: pos[:, names.index(v)] for k, v in scheme.items()}
    # metres: the standing height (head to the lower ankle) of frame 0 taken as 1.6 m
    h0 = g["head"][0, 1] - min(g["left_ankle"][0, 1], g["right_ankle"][0, 1])
    scale = 1.6 / h0
    g = {k: v * scale for k, v in g.items()}
    unit = np.ones(len(frames))
    face = face_points(g["head"], g["neck"], g["left_hip"], g["right_hip"], unit)
    body = [g[n] for n in COCO[5:]]
    return np.stack(face + body, axis=1), dt * every


def main():
    data = sys.argv[1]
    skel = urdf_skeleton(os.path.join(data, "humanoid", "humanoid.urdf"))
    rows = []
    clips = {}
    for f in sorted(os.listdir(os.path.join(data, "data", "motions"))):
        m = re.match(r"humanoid3d_(\w+)\.txt$", f)
        if not m:
            continue
        kp, dt = motion_keypoints(os.path.join(data, "data", "motions", f), skel)
        clips[m.group(1)] = kp
        h = kp[:, :, 1]
        rows.append(f"{m.group(1):16s} {LABEL[m.group(1)]:9s} {len(kp):4d} frames x {dt * 1000:.1f} ms; "
                    f"height span {h.max(1).mean() - h.min(1).mean():.2f} m; "
                    f"pelvis travel {np.linalg.norm(kp[-1, 11:13].mean(0) - kp[0, 11:13].mean(0)):.2f} m")
    bvh = "/usr/share/assimp/models/BVH"
    for f in ("01_01.bvh", "Boxing_Toes.bvh"):
        if os.path.exists(os.path.join(bvh, f)):
            kp, dt = bvh_keypoints(os.path.join(bvh, f), every=4)
            clips[f[:-4]] = kp
            h = kp[:, :, 1]
            rows.append(f"{f[:-4]:16s} {'':9s} {len(kp):4d} frames x {dt * 1000:.1f} ms; height span "
                        f"{h.max(1).mean() - h.min(1).mean():.2f} m")
    print("\n".join(rows))
    if "--plot" in sys.argv:
        from PIL import Image, ImageDraw
        out = sys.argv[sys.argv.index("--plot") + 1]
        bones = [(5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (11, 12), (5, 11), (6, 12), (11, 13), (13, 15),
                 (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4)]
        names = ["walk", "run", "jump", "punch", "kick", "crawl", "cartwheel", "dance_a", "01_01", "Boxing_Toes"]
        img = Image.new("RGB", (200 * len(names), 220), "white")
        d = ImageDraw.Draw(img)
        for i, name in enumerate(names):
            kp = clips[name]
            uv = project(kp[len(kp) // 3: len(kp) // 3 + 1], az=0.9, el=0.15, dist=4.0, focal=1.0)[0]
            uv = uv - uv[11:13].mean(0)
            uv = uv * 150 + np.array([100 + 200 * i, 120])
            for a, b in bones:
                d.line([tuple(uv[a]), tuple(uv[b])], fill="black", width=2)
            d.text((200 * i + 5, 5), name, fill="red")
        img.save(out)
        print("plot:", out)


if __name__ == "__main__":
    main()
