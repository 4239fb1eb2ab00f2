"""A small H.264 + AAC file written with PyAV at test time."""

import numpy as np


def write_test_video(path, seconds=2.0, fps=25, sampling_rate=48000, channels=2, width=96, height=64):
    import av

    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = container.add_stream("aac", rate=sampling_rate)
    audio.layout = "stereo" if channels == 2 else "mono"
    for i in range(int(seconds * fps)):
        image = np.full((height, width, 3), (i * 5) % 255, np.uint8)
        for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    samples = np.stack([0.3 * np.sin(2 * np.pi * 440 * (c + 1) * t) for c in range(channels)]).astype(np.float32)
    for start in range(0, samples.shape[1], 1024):
        frame = av.AudioFrame.from_ndarray(samples[:, start : start + 1024].copy(), format="fltp", layout=audio.layout.name)
        frame.sample_rate, frame.pts = sampling_rate, start
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)
    container.close()
    return path
