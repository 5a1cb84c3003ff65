"""ALS peers for bench/train-als: the `implicit` library (CPU, conjugate gradient) and Spark MLlib
ALS (pyspark, local mode), fitted on the same enrollments with the same confidence as
`mooc-worker train-als`, and measured with the same recall@10 / NDCG@10 as the worker.

    train_als.py implicit|spark TRAIN.csv HELDOUT.csv HYPERPARAMETERS_JSON THREADS
    train_als.py factors TRAIN.csv HELDOUT.csv USERS.tsv COURSES.tsv   (ours, read from PostgreSQL)
    train_als.py split GENERATED_TRAIN.csv OUT_DIR                     (leave-one-out files)

Prints one JSON line: fitSeconds, peakMemoryBytes (this process plus Spark's JVM), the metrics.
"""

import json
import os
import resource
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

K = 10
ACTIONS = [
    "action_click_about", "action_click_courseware", "action_click_forum", "action_click_info",
    "action_click_progress", "action_close_courseware", "action_close_forum",
    "action_create_comment", "action_create_thread", "action_delete_comment",
    "action_delete_thread", "action_load_video", "action_pause_video", "action_play_video",
    "action_problem_check", "action_problem_check_correct", "action_problem_check_incorrect",
    "action_problem_get", "action_problem_save", "action_reset_problem", "action_seek_video",
    "action_stop_video",
]


def signal(frame, kind):
    """The worker's confidence signal: log1p / raw total actions, 1 when no count is recorded."""
    counts = frame[ACTIONS]
    present = counts.notna().any(axis=1).to_numpy()
    total = counts.fillna(0).sum(axis=1).to_numpy(dtype=np.float64)
    if kind == "Binary":
        return np.ones(len(frame))
    value = np.log1p(total) if kind == "LogActivity" else total
    return np.where(present, value, 1.0)


def load(train_csv, heldout_csv):
    columns = ["username", "course_id"] + ACTIONS
    train = pd.read_csv(train_csv, usecols=lambda c: c.lower() in columns, dtype={"username": str, "course_id": str})
    train.columns = [c.lower() for c in train.columns]
    # A repeated enrollment counts once (the worker's table holds one row per pair).
    train = train.drop_duplicates(["username", "course_id"], keep="last")
    users, user_ids = pd.factorize(train["username"])
    courses, course_ids = pd.factorize(train["course_id"])
    held = pd.read_csv(heldout_csv, dtype=str)
    held.columns = [c.lower() for c in held.columns]
    return train, users, courses, pd.Index(user_ids), pd.Index(course_ids), held


def held_out_matrix(held, user_ids, course_ids, known):
    """Per user: (held-out course indices, count of courses the model never saw: always
    missed); rows the worker skips (unknown users, repeats of a training enrollment) alike."""
    u = user_ids.get_indexer(held["username"])
    c = course_ids.get_indexer(held["course_id"])
    keep = u >= 0
    u, c = u[keep], c[keep]
    per_user = {}
    for ui, ci in zip(u.tolist(), c.tolist()):
        if ci >= 0 and known[ui, ci] != 0:
            continue
        entry = per_user.setdefault(ui, [set(), 0])
        if ci >= 0:
            entry[0].add(ci)
        else:
            entry[1] += 1
    return per_user


def evaluate(user_factors, item_factors, known, per_user):
    """recall@K and NDCG@K: the worker's definitions, training courses excluded."""
    users = np.array(sorted(per_user))
    gains = 1.0 / np.log2(np.arange(K) + 2.0)
    recall = ndcg = 0.0
    for start in range(0, len(users), 4096):
        batch = users[start:start + 4096]
        scores = user_factors[batch] @ item_factors.T
        scores[known[batch].nonzero()] = -np.inf
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        for user, ranked in zip(batch.tolist(), top.tolist()):
            relevant, unseen = per_user[user]
            held = len(relevant) + unseen
            hits = [i for i, course in enumerate(ranked) if course in relevant]
            recall += len(hits) / held
            ndcg += sum(gains[i] for i in hits) / gains[: min(K, held)].sum()
    return {"users": len(users), "recallAt10": recall / len(users), "ndcgAt10": ndcg / len(users)}


def split(train_csv, out_dir):
    """Leave-one-out for generated data: each learner's last enrollment with 2 or more goes to
    heldout.csv, the rest to train.csv, both in out_dir."""
    frame = pd.read_csv(train_csv, dtype=str, keep_default_na=False)
    size = frame.groupby("username")["course_id"].transform("size")
    last = frame.groupby("username").cumcount(ascending=False) == 0
    held = (size >= 2) & last
    os.makedirs(out_dir, exist_ok=True)
    frame[~held].to_csv(os.path.join(out_dir, "train.csv"), index=False)
    frame[held][["username", "course_id"]].to_csv(os.path.join(out_dir, "heldout.csv"), index=False)


def peak_memory_bytes(extra_pids=()):
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for pid in extra_pids:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    own += int(line.split()[1]) * 1024
    return own


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def fit_implicit(confidence, h, threads):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=h["factors"], regularization=h["regularization"], alpha=1.0,
        iterations=h["iterations"], use_cg=True, use_native=True, num_threads=threads,
        calculate_training_loss=False, random_state=h["seed"],
    )
    started = time.perf_counter()
    model.fit(confidence, show_progress=False)
    return time.perf_counter() - started, model.user_factors, model.item_factors, []


def fit_spark(users, courses, strength, shape, h, threads):
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{threads}]").appName("bench-als")
             .config("spark.driver.memory", "6g").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(threads * 2)).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    # Without a checkpoint directory ALS's lineage grows every iteration until the executor's
    # stack overflows (it did at 15 iterations); Spark's own advice is to checkpoint.
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="bench-als-spark-"))
    frame = spark.createDataFrame(pd.DataFrame({"user": users, "item": courses, "rating": strength}))
    frame = frame.repartition(threads * 2).cache()
    frame.count()
    # Spark's confidence is 1 + alpha·rating: the same c as the worker's with rating = signal.
    als = ALS(rank=h["factors"], maxIter=h["iterations"], regParam=h["regularization"],
              alpha=h["alpha"], implicitPrefs=True, userCol="user", itemCol="item",
              ratingCol="rating", seed=h["seed"], numUserBlocks=threads * 2,
              numItemBlocks=threads * 2)
    started = time.perf_counter()
    model = als.fit(frame)
    model.userFactors.count()
    seconds = time.perf_counter() - started
    user_factors = np.zeros((shape[0], h["factors"]), dtype=np.float32)
    item_factors = np.zeros((shape[1], h["factors"]), dtype=np.float32)
    for row in model.userFactors.toLocalIterator():
        user_factors[row["id"]] = row["features"]
    for row in model.itemFactors.toLocalIterator():
        item_factors[row["id"]] = row["features"]
    jvm = children(os.getpid())
    memory = peak_memory_bytes(jvm)
    spark.stop()
    return seconds, user_factors, item_factors, memory


def read_factors(path, ids):
    frame = pd.read_csv(path, sep="\t", header=None, names=["id", "factors"], dtype=str, quoting=3)
    index = ids.get_indexer(frame["id"])
    vectors = np.array([np.array(v.strip("{}").split(","), dtype=np.float32) for v in frame["factors"]])
    out = np.zeros((len(ids), vectors.shape[1]), dtype=np.float32)
    out[index] = vectors
    return out


def main():
    mode, train_csv, heldout_csv = sys.argv[1:4]
    if mode == "split":
        split(train_csv, heldout_csv)
        return
    train, users, courses, user_ids, course_ids, held = load(train_csv, heldout_csv)
    shape = (len(user_ids), len(course_ids))
    known = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (users, courses)), shape=shape)
    per_user = held_out_matrix(held, user_ids, course_ids, known)
    if mode == "factors":
        user_factors = read_factors(sys.argv[4], user_ids)
        item_factors = read_factors(sys.argv[5], course_ids)
        print(json.dumps(evaluate(user_factors, item_factors, known, per_user)))
        return
    h, threads = json.loads(sys.argv[4]), int(sys.argv[5])
    strength = signal(train, h.get("confidence", "LogActivity"))
    if mode == "implicit":
        confidence = sp.csr_matrix(((1.0 + h["alpha"] * strength).astype(np.float32), (users, courses)), shape=shape)
        seconds, user_factors, item_factors, _ = fit_implicit(confidence, h, threads)
        memory = peak_memory_bytes()
    else:
        seconds, user_factors, item_factors, memory = fit_spark(users, courses, strength, shape, h, threads)
    result = evaluate(np.asarray(user_factors), np.asarray(item_factors), known, per_user)
    result.update({"solver": mode, "fitSeconds": seconds, "peakMemoryBytes": memory})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
