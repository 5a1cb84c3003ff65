"""The Python peer of `mooc-worker train-dropout` for bench/train-dropout: pandas read_sql for
loading, then LightGBM with the same features, split, vocabulary rule and parameters.
Prints one JSON line: load and train seconds, best iteration, test AUC."""
import json
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
import sqlalchemy
from sklearn.metrics import roc_auc_score

ACTIONS = """click_about click_courseware click_forum click_info click_progress close_courseware
close_forum create_comment create_thread delete_comment delete_thread load_video pause_video
play_video problem_check problem_check_correct problem_check_incorrect problem_get problem_save
reset_problem seek_video stop_video""".split()
ACTIVITY = [f"action_{a}" for a in ACTIONS] + ["unique_session_count", "avg_nactions_per_session"]
CATEGORICAL = ["course_id", "gender", "education"]
MIN_CATEGORY_COUNT = 10  # the worker's dataset::MIN_CATEGORY_COUNT
M = (1 << 64) - 1


def user_hash(user: str, seed: int) -> int:
    """split::user_hash: FNV-1a over the seed's bytes and the id's, then splitmix64."""
    x = 0xCBF29CE484222325
    for b in seed.to_bytes(8, "little") + user.encode():
        x = ((x ^ b) * 0x100000001B3) & M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)


def main(url: str, params_json: str, threads: int) -> None:
    h = json.loads(params_json)
    engine = sqlalchemy.create_engine(url)
    query = (
        f"SELECT e.username, e.course_id, e.truth, {', '.join('e.' + c for c in ACTIVITY)}, "
        "u.gender, u.education, u.birth FROM enrollments e "
        "LEFT JOIN users u ON u.user_id = e.username WHERE e.truth IS NOT NULL"
    )
    started = time.perf_counter()
    frame = pd.read_sql(query, engine)
    load_seconds = time.perf_counter() - started

    # Not timed: the split and the vocabularies, as the worker builds them.
    users = frame["username"].unique()
    u = {name: (user_hash(name, h["seed"]) >> 11) / float(1 << 53) for name in users}
    position = frame["username"].map(u)
    test = position < h["testFraction"]
    valid = ~test & (position < h["testFraction"] + h["validationFraction"])
    train = ~test & ~valid
    features = pd.DataFrame({c: frame[c].astype("float64") for c in ACTIVITY})
    for column in CATEGORICAL:
        counts = frame[column].value_counts()
        kept = counts[counts >= MIN_CATEGORY_COUNT]
        order = sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))
        codes = {value: i + 1 for i, (value, _) in enumerate(order)}
        features[column] = frame[column].map(codes).fillna(0).astype("float64")
    features["birth"] = frame["birth"].astype("float64")
    label = frame["truth"].astype("float32")

    params = {
        "objective": "binary",
        "metric": "auc",
        "learning_rate": h["learningRate"],
        "num_leaves": h["numLeaves"],
        "min_data_in_leaf": h["minDataInLeaf"],
        "feature_fraction": h["featureFraction"],
        "lambda_l2": h["lambdaL2"],
        "seed": h["seed"],
        "num_threads": threads,
        "verbosity": -1,
    }
    started = time.perf_counter()
    train_set = lgb.Dataset(
        features[train].to_numpy(), label[train].to_numpy(),
        categorical_feature=[24, 25, 26], params=params,
    )
    valid_set = lgb.Dataset(
        features[valid].to_numpy(), label[valid].to_numpy(), reference=train_set,
    )
    booster = lgb.train(
        params, train_set, num_boost_round=h["maxRounds"], valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(h["earlyStoppingRounds"], verbose=False)],
    )
    train_seconds = time.perf_counter() - started
    predictions = booster.predict(features[test].to_numpy(), num_iteration=booster.best_iteration)
    print(json.dumps({
        "loadSeconds": load_seconds,
        "trainSeconds": train_seconds,
        "bestIteration": booster.best_iteration,
        "auc": roc_auc_score(label[test].to_numpy(), predictions),
        "samples": {"train": int(train.sum()), "validation": int(valid.sum()), "test": int(test.sum())},
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
