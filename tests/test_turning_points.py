"""TRIPOD turning points projected onto scenes (labeling/corpus/turning_points.py), on a made-up movie."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.corpus import turning_points as tp
from models.complexity.data import SequenceDoc

# Ten scenes of a small heist story, and a synopsis that tells it in order.
SCENES = [
    SequenceDoc(0, ["A crowded diner at dawn. MAYA pours coffee."], ["More coffee?"], ["MAYA"]),
    SequenceDoc(1, ["An envelope slides across the counter."], ["Open it. It's the bank job."], ["LOU", "MAYA"]),
    SequenceDoc(2, ["Maya studies blueprints of the vault."], ["The vault has two doors."], ["MAYA"]),
    SequenceDoc(3, ["A warehouse. The crew gathers."], ["We go on Friday."], ["LOU", "DEX"]),
    SequenceDoc(4, ["Maya burns her apartment lease in the sink."], ["No way back now."], ["MAYA"]),
    SequenceDoc(5, ["Rain on the highway."], [], []),
    SequenceDoc(6, ["Sirens. Police cars surround the bank."], ["Dex betrayed us!"], ["LOU", "MAYA"]),
    SequenceDoc(7, ["A quiet motel room."], ["Get some sleep."], ["LOU"]),
    SequenceDoc(8, ["On the rooftop Maya fights Dex for the bag of diamonds."], ["Give me the diamonds!"],
                ["DEX", "MAYA"]),
    SequenceDoc(9, ["Dawn at the diner again. Maya pours coffee, smiling."], [], ["MAYA"]),
]
SYNOPSIS = (
    "Maya (Jane Actor) pours coffee in a crowded diner.",            # 0
    "Lou hands Maya an envelope with a bank job.",                    # 1 opportunity
    "She studies the vault blueprints.",                              # 2
    "The crew meets in a warehouse and picks Friday.",                # 3 change of plans
    "Maya burns her lease: there is no way back.",                    # 4 point of no return
    "Dex betrayed them and the police surround the bank.",            # 5 major setback
    "On the rooftop Maya fights Dex for the diamonds.",               # 6 climax
    "She returns to the diner.",                                      # 7
)


def annotation(points=(1, 3, 4, 5, 6), annotator="0") -> tp.SynopsisAnnotation:
    return tp.SynopsisAnnotation("Heist", annotator, SYNOPSIS, tuple(points))


def scenes() -> list[str]:
    return [tp.scene_text(doc) for doc in SCENES]


def test_each_turning_point_lands_on_its_scene():
    assert tp.turning_point_scenes(annotation(), scenes()) == [[1], [3], [4], [6], [8]]
    # Without the window too: these sentences share rare words with exactly one scene.
    assert tp.turning_point_scenes(annotation(), scenes(), window=None) == [[1], [3], [4], [6], [8]]
    two = tp.turning_point_scenes(annotation(), scenes(), top=2)
    assert [p[0] for p in two] == [1, 3, 4, 6, 8] and all(len(p) == 2 for p in two)


def test_the_window_keeps_a_sentence_near_its_place_in_the_story():
    # The first and the last scene read alike: by words alone the earlier one wins the tie; a last
    # sentence of the synopsis, with the window, lands on the last scene.
    alike = ["the diner, coffee poured", "a highway in the rain", "a rooftop fight", "the diner, coffee poured"]
    assert tp.project(["Back at the diner, coffee."], alike) == [[0]]
    assert tp.project(["Back at the diner, coffee."], alike, positions=[1.0], window=0.25) == [[3]]
    assert tp.project(["Back at the diner, coffee."], alike, positions=[0.0], window=0.25) == [[0]]


def test_distance_to_the_nearest_turning_point_becomes_a_rating():
    ratings = tp.distance_rating(40, [[10], [30]])
    assert ratings[10] == 5 and ratings[30] == 5
    assert ratings[11] == 4 and ratings[28] == 4  # one or two scenes away
    assert ratings[13] == 3 and ratings[24] == 3  # three to six
    assert ratings[20] == 2 and ratings[0] == 2 and ratings[39] == 2  # seven to fifteen
    assert list(tp.distance_rating(60, [[0]])[[0, 2, 3, 6, 7, 15, 16, 59]]) == [5, 4, 3, 3, 2, 2, 1, 1]
    assert set(tp.distance_rating(5, [])) == {1}


def test_projection_checks_story_order_and_annotators():
    check = tp.check_projection(annotation(), scenes())
    assert check.order_spearman > 0.95 and check.tp_within_10pct >= 0.6 and check.tp_position_gap < 0.15
    # A synopsis that told the story backwards would be out of order: the check says so.
    backwards = tp.SynopsisAnnotation("Heist", "0", SYNOPSIS[::-1], (1, 2, 3, 4, 6))
    assert tp.check_projection(backwards, scenes()).order_spearman < -0.9
    same = tp.annotator_agreement([annotation(), annotation(annotator="1")], scenes())
    assert same == (5, 5)
    # The second annotator puts the setback one sentence late (the climax scene, 8 instead of 6).
    apart = tp.annotator_agreement([annotation(), annotation((1, 3, 4, 6, 6), "1")], scenes())
    assert apart == (4, 5)
    assert tp.annotator_agreement([annotation(), annotation((1, 3, 4, 6, 6), "1")], scenes(), within=2) == (5, 5)


def test_synopses_are_read_from_tripods_csv(tmp_path):
    pd = pytest.importorskip("pandas")
    segmented = " ".join(f"[STR_SENT] {s} [END_SENT]" for s in SYNOPSIS)
    rows = [{"movie_name": f"Heist (film)_{k}", "synopsis_raw": "\n".join(SYNOPSIS), "synopsis_segmented": segmented,
             "tp1": 1, "tp2": 3, "tp3": 4, "tp4": 5 + k, "tp5": 6} for k in (1, 0)]
    path = tmp_path / "TRIPOD_synopses_train.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    [(movie, annotations)] = tp.load_synopses(path).items()
    assert movie == "Heist (film)" and [a.annotator for a in annotations] == ["0", "1"]
    assert annotations[0].sentences == SYNOPSIS and annotations[0].turning_points == (1, 3, 4, 5, 6)
    assert annotations[1].turning_points == (1, 3, 4, 6, 6)
    assert np.allclose(tp.sentence_positions(annotations[0])[[0, -1]], [0.0, 1.0])
