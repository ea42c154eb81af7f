"""The drifts a simulation can inject, and how the simulated traffic looks with and without them.

A scenario is a list of injections that all start at the same simulated time. Each
injection names the drift kind and metric the engine should report, and the effect on
the traffic (`Behaviour`) while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from driftloop.simulate.topics import BASELINE_TOPICS

# Share of each baseline topic in normal traffic (machine_learning, programming, databases,
# devops, billing). Topic shift moves most traffic to the last two; the new topic takes a
# share of its own.
BASELINE_MIX: dict[str, float] = {
    "machine_learning": 0.40,
    "programming": 0.30,
    "databases": 0.16,
    "devops": 0.09,
    "billing": 0.05,
}
SHIFTED_MIX: dict[str, float] = {
    "machine_learning": 0.04,
    "programming": 0.06,
    "databases": 0.15,
    "devops": 0.30,
    "billing": 0.45,
}
NEW_TOPIC = "crypto"
NEW_TOPIC_SHARE = 0.45

BASE_REFUSAL = 0.01
SPIKE_REFUSAL = 0.15
BASE_TOXIC = 0.002
SPIKE_TOXIC = 0.08
# Accuracy decay is a change of the ground truth (concept drift): support is reorganised and
# questions about these topics now belong to a new intent the deployed router never saw.
RELABELLED_TOPICS = ("databases", "devops")
NEW_INTENT = "platform"
# The reorganisation rolls out linearly over this many minutes.
DECAY_MINUTES = 30.0

assert set(BASELINE_MIX) == set(SHIFTED_MIX) == set(BASELINE_TOPICS)


@dataclass(frozen=True)
class Injection:
    kind: str
    metric: str
    effect: str
    description: str
    magnitude: dict[str, object]
    # The built-in action that should fix it under the default routes.
    action: str
    # Other metrics of the same kind that rightly report it (a new topic is new traffic far
    # from every baseline point: the engine's novelty rate sees it as well as the centroid;
    # any lasting move of the mean builds sequential evidence and shows over the whitened window).
    also: tuple[str, ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric, *self.also)


TOPIC_SHIFT = Injection(
    "embedding",
    "centroid_distance",
    "topic_shift",
    "traffic moves from machine learning and programming to devops and billing questions",
    {"before": BASELINE_MIX, "after": SHIFTED_MIX},
    "reindex",
    also=("mean_shift_evidence", "whitened_mean_shift"),
)
NEW_TOPIC_INJECTION = Injection(
    "embedding",
    "centroid_distance",
    "new_topic",
    f"a topic never seen before ({NEW_TOPIC}) takes {NEW_TOPIC_SHARE:.0%} of traffic",
    {"topic": NEW_TOPIC, "share": NEW_TOPIC_SHARE},
    "reindex",
    also=("novelty_rate", "mean_shift_evidence", "whitened_mean_shift"),
)
REFUSAL_SPIKE = Injection(
    "behavior",
    "refusal_rate",
    "refusal_spike",
    f"refusals rise from {BASE_REFUSAL:.0%} to {SPIKE_REFUSAL:.0%} of answers",
    {"before": BASE_REFUSAL, "after": SPIKE_REFUSAL},
    "update_system_prompt",
)
TOXICITY_SPIKE = Injection(
    "behavior",
    "toxicity_rate",
    "toxicity_spike",
    f"toxic answers rise from {BASE_TOXIC:.1%} to {SPIKE_TOXIC:.0%}",
    {"before": BASE_TOXIC, "after": SPIKE_TOXIC},
    "update_system_prompt",
)
ACCURACY_DECAY = Injection(
    "accuracy",
    "accuracy",
    "accuracy_decay",
    f"{' and '.join(RELABELLED_TOPICS)} questions move to a new intent ({NEW_INTENT}) over {DECAY_MINUTES:.0f} minutes",
    {"topics": list(RELABELLED_TOPICS), "intent": NEW_INTENT, "minutes": DECAY_MINUTES},
    "retrain",
)
# Not a change of its own: the router has never seen the new topic's intent, so its
# questions are misrouted and accuracy falls until a retrain learns it.
NEW_TOPIC_ACCURACY = Injection(
    "accuracy",
    "accuracy",
    "new_topic",
    f"the router misroutes the new topic ({NEW_TOPIC}), an intent it never saw",
    {"topic": NEW_TOPIC},
    "retrain",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    injections: tuple[Injection, ...] = field(default=())


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("topic_shift", "users move to other topics", (TOPIC_SHIFT,)),
        Scenario("new_topic", "users start asking about a new topic", (NEW_TOPIC_INJECTION, NEW_TOPIC_ACCURACY)),
        Scenario("refusal_spike", "the assistant starts refusing", (REFUSAL_SPIKE,)),
        Scenario("toxicity_spike", "the assistant turns rude", (TOXICITY_SPIKE,)),
        Scenario("accuracy_decay", "answers get worse", (ACCURACY_DECAY,)),
        Scenario(
            "all_at_once",
            "a new topic, refusals, toxicity and falling accuracy together",
            (NEW_TOPIC_INJECTION, REFUSAL_SPIKE, TOXICITY_SPIKE, ACCURACY_DECAY),
        ),
        Scenario("control", "no drift: nothing should be detected"),
    )
}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name.replace("-", "_")]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


@dataclass(frozen=True)
class Behaviour:
    """How the simulated system behaves during one slice of simulated time."""

    mix: dict[str, float]
    refusal: float
    toxic: float
    # Share of RELABELLED_TOPICS questions whose true intent is already NEW_INTENT.
    relabelled: float


def behaviour(
    injections: tuple[Injection, ...], minutes_since_start: float | None, prompt_fixes: frozenset[str]
) -> Behaviour:
    """The traffic's parameters `minutes_since_start` after the injections (None: before).

    `prompt_fixes` are the metrics a system prompt now in force was written for (the
    worker's update_system_prompt adds guidance for the drifted metric).
    """
    mix = dict(BASELINE_MIX)
    refusal, toxic, relabelled = BASE_REFUSAL, BASE_TOXIC, 0.0
    if minutes_since_start is None:
        return Behaviour(mix, refusal, toxic, relabelled)
    for inj in injections:
        # Embedding drift is a change in what users ask: no action undoes it; a reindex makes
        # it the new normal by moving the baseline.
        if inj.effect == "topic_shift":
            mix = dict(SHIFTED_MIX)
        elif inj.effect == "new_topic" and inj.kind == "embedding":
            mix = {k: v * (1 - NEW_TOPIC_SHARE) for k, v in mix.items()}
            mix[NEW_TOPIC] = NEW_TOPIC_SHARE
        # A system prompt with guidance for the metric puts it back where it was.
        elif inj.effect == "refusal_spike" and "refusal_rate" not in prompt_fixes:
            refusal = SPIKE_REFUSAL
        elif inj.effect == "toxicity_spike" and "toxicity_rate" not in prompt_fixes:
            toxic = SPIKE_TOXIC
        # The truth changes; only a router retrained on recent labels follows it.
        elif inj.effect == "accuracy_decay":
            relabelled = min(1.0, minutes_since_start / DECAY_MINUTES)
    return Behaviour(mix, refusal, toxic, relabelled)
