"""Words, messages and weights the corpus draws from (private to the simulator).

The error messages are the exact texts kie.ai documents (see ``shared/api-facts.md``).
"""

from __future__ import annotations

# --- categorical mixes: (value, weight) -------------------------------------------------
MODELS = (("veo3_fast", 0.60), ("veo3", 0.25), ("veo3_lite", 0.15))
GENERATION_TYPES = (
    ("TEXT_2_VIDEO", 0.62),
    ("FIRST_AND_LAST_FRAMES_2_VIDEO", 0.26),
    ("REFERENCE_2_VIDEO", 0.12),
)
ASPECT_RATIOS = (("16:9", 0.64), ("9:16", 0.29), ("Auto", 0.07))
TASK_TYPES = (("generate", 0.80), ("extend", 0.08), ("1080p", 0.08), ("4k", 0.04))

# --- latency: log-normal (median seconds, sigma) by model x task type ---------------------
LATENCY = {
    ("generate", "veo3"): (150.0, 0.35),
    ("generate", "veo3_fast"): (75.0, 0.32),
    ("generate", "veo3_lite"): (55.0, 0.30),
    ("extend", "quality"): (170.0, 0.35),
    ("extend", "fast"): (90.0, 0.32),
    ("1080p", ""): (105.0, 0.25),  # kie.ai: 1-3 min
    ("4k", ""): (430.0, 0.18),  # kie.ai: 5-10 min
}

# --- failure probability by model (generate); other task types scale it ------------------
FAILURE_RATE = {
    "veo3": 0.035,
    "veo3_fast": 0.055,
    "veo3_lite": 0.085,
    "fast": 0.06,
    "quality": 0.04,
}
UPGRADE_FAILURE_RATE = 0.05  # 1080p and 4k, before TYPE_FAILURE_SCALE
TYPE_FAILURE_SCALE = {"generate": 1.0, "extend": 1.2, "1080p": 0.5, "4k": 1.4}
NON_ENGLISH_SHARE = 0.012  # of generate prompts; these fail with the language error
GENERATION_FAILED_SHARE = 0.45  # of 500/501 failures answered with successFlag 3

# --- families (how extends and upgrades hang together; see corpus.py) --------------------
CHAIN_SHARE = 0.35  # of extends and upgrades: built on an extended video, not the first clip
MAX_DEPTH = 4  # generate (0) -> extend (1) -> extend (2) -> extend (3) -> upgrade (4)
RETRIED_SHARE = 0.6  # of failed upgrades: retried later by an upgrade of the same type
LATE_SHARE = 0.12  # of children: made days after their parent (a user coming back)
LATE_DAYS = (1.0, 6.0)  # how many days later, uniform

LANGUAGE_ERROR = (400, "Only English prompts are supported at this time.")
K4_UNAVAILABLE = (500, "The 4K version of this video is unavailable. Please try a different video.")

# (errorCode, errorMessage, weight, image_only, median latency seconds)
FAILURES = (
    (400, "Your prompt was flagged by Website as violating content policies.", 0.26, False, 9.0),
    (
        400,
        "Failed to fetch the image. Kindly verify any access limits set by you or your "
        "service provider.",
        0.08,
        True,
        6.0,
    ),
    (400, "public error unsafe image upload.", 0.05, True, 12.0),
    (400, "Public error: unsafe image upload", 0.02, True, 12.0),
    (400, "public error minor upload", 0.03, True, 14.0),
    (400, "public error prominent people upload", 0.03, True, 15.0),
    (
        400,
        "Rejected by Google's content policy (public error prominent people upload)",
        0.04,
        False,
        40.0,
    ),
    (
        422,
        "Your request was rejected by Flow(content policy). You may consider using our other "
        "fallback channels, which are likely to succeed. Please refer to the documentation.",
        0.04,
        False,
        30.0,
    ),
    (500, "Internal Error, Please try again later.", 0.22, False, 90.0),
    (500, "Internal Error - Timeout", 0.08, False, 600.0),
    (501, "Video generation task failed", 0.15, False, 120.0),
)

# --- prompts --------------------------------------------------------------------------
SUBJECTS = (
    "A golden retriever",
    "An astronaut",
    "A red fox",
    "A vintage sports car",
    "A lone surfer",
    "A street musician",
    "A hummingbird",
    "A paper boat",
    "A futuristic city",
    "An old fisherman",
    "A ballet dancer",
    "A steaming cup of coffee",
    "A herd of wild horses",
    "A robot chef",
    "A hot air balloon",
    "A sea turtle",
    "A neon-lit food truck",
    "A child with a kite",
    "A snow leopard",
    "A glass sculpture",
    "A freight train",
    "A koi fish",
    "A lighthouse keeper",
    "A cyclist",
    "A monarch butterfly",
)
ACTIONS = (
    "walks slowly through",
    "races across",
    "floats above",
    "dances in",
    "glides over",
    "explores",
    "rests quietly in",
    "emerges from",
    "spins around in",
    "drifts through",
    "climbs toward",
    "waits patiently in",
    "leaps across",
    "wanders through",
)
SETTINGS = (
    "a misty pine forest at dawn",
    "a rain-soaked Tokyo alley at night",
    "a sunflower field at golden hour",
    "the surface of Mars",
    "a crowded night market",
    "an abandoned greenhouse",
    "a frozen lake under the northern lights",
    "a coral reef teeming with fish",
    "a quiet library lit by candles",
    "a desert canyon during a sandstorm",
    "a cyberpunk skyline with flying cars",
    "a cozy kitchen on a snowy morning",
    "a windswept Scottish cliff",
    "a bamboo grove in the wind",
    "a jazz club full of smoke",
    "a mountain village at sunset",
)
STYLES = (
    "cinematic lighting, shallow depth of field",
    "handheld documentary style",
    "slow motion, 35mm film grain",
    "aerial drone shot",
    "Pixar-style 3D animation",
    "hyper-realistic, 8k detail",
    "soft pastel watercolor look",
    "dramatic low-angle shot",
    "smooth dolly zoom",
    "vibrant anime style",
    "moody noir black and white",
    "time-lapse",
    "warm nostalgic tones",
    "epic orchestral mood",
)
NON_ENGLISH_PROMPTS = (
    "Un gato naranja durmiendo al sol en una ventana antigua",
    "一只小狗在雪地里奔跑，电影质感",
    "Une voiture rouge roule sur une route de montagne au coucher du soleil",
    "Ein Leuchtturm im Sturm bei Nacht, dramatische Wellen",
    "夕焼けの海辺を歩く少女、映画のような映像",
    "Um beija-flor voando em câmera lenta sobre flores",
)
EXTEND_PROMPTS = (
    "Continue the scene as the camera slowly pulls back.",
    "The character turns and smiles at the camera.",
    "Rain begins to fall and the lights flicker on.",
    "The camera follows as it moves into the distance.",
    "Night falls and the stars come out.",
)
WATERMARKS = ("", "", "", "KieAI", "MyBrand")
