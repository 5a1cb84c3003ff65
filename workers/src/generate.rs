//! `mooc-worker generate`: seeded synthetic inputs in the exact input format, of any size, for
//! benchmarks and demos. Streams rows to disk (memory does not grow with the row count).
//!
//! Shape, after the real sets: course popularity is Zipf-like, courses per learner heavy-tailed
//! (median 2–3, a long tail), about 75% dropout, activity counts log-normal and lower for learners
//! who drop out, ids in the real styles (integers, 32-character hashes, `course-v1:Org+Code+Run`
//! with a few non-ASCII ones), some learners without a user_info row.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::etl::columns::{ACTION_COLUMNS, enrollment_columns};
use crate::seeded::Rng;

#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Enrollments (rows of train.csv) to write.
    #[arg(long, default_value_t = 100_000)]
    pub enrollments: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Directory for user_info.csv and train.csv (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// What was written.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generated {
    pub enrollments: u64,
    pub users: u64,
    pub users_with_info: u64,
    pub courses: u64,
}

/// Course ids in the XuetangX style, a few with non-ASCII codes.
fn course_id(index: u64) -> String {
    const ORGS: [&str; 6] = [
        "TsinghuaX",
        "PekingX",
        "MITx",
        "FudanX",
        "学堂在线",
        "HarvardX",
    ];
    let org = ORGS[(index % ORGS.len() as u64) as usize];
    format!(
        "course-v1:{org}+{:08}X+{}_T{}",
        70_000_000 + index * 37,
        2014 + index % 4,
        1 + index % 2
    )
}

/// Learner ids: mostly integers, some 32-character hashes as in KDD Cup 2015.
fn user_id(index: u64, rng: &mut Rng) -> String {
    if index % 5 == 4 {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..32)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    } else {
        (1_000_000 + index * 7).to_string()
    }
}

/// Zipf-like popularity: cumulative weights 1/rank^0.9, sampled by binary search.
struct Popularity(Vec<f64>);

impl Popularity {
    fn new(courses: u64) -> Self {
        let mut total = 0.0;
        Self(
            (1..=courses)
                .map(|rank| {
                    total += (rank as f64).powf(-0.9);
                    total
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let target = rng.unit() * self.0.last().copied().unwrap_or(0.0);
        self.0.partition_point(|&c| c < target) as u64
    }
}

fn writer(dir: &Path, name: &str) -> anyhow::Result<csv::Writer<BufWriter<File>>> {
    let path = dir.join(name);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(csv::Writer::from_writer(BufWriter::with_capacity(
        1 << 20,
        file,
    )))
}

pub fn generate(args: &GenerateArgs) -> anyhow::Result<Generated> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut rng = Rng(args.seed);
    let courses = (args.enrollments / 350).clamp(30, 20_000);
    let popularity = Popularity::new(courses);

    let mut train = writer(&args.out, "train.csv")?;
    let mut header = enrollment_columns();
    let average = header.len() - 2;
    header[average] = "avg_nActions_per_session"; // as the real files spell it
    train.write_record(&header)?;
    let mut users_file = writer(&args.out, "user_info.csv")?;
    users_file.write_record(["user_id", "gender", "education", "birth"])?;

    let mut written = Generated {
        enrollments: 0,
        users: 0,
        users_with_info: 0,
        courses,
    };
    let first_day = 1_404_345_600_i64; // 2014-07-03
    let mut taken = Vec::new();
    while written.enrollments < args.enrollments {
        let user = user_id(written.users, &mut rng);
        written.users += 1;
        // About 3% of learners have enrollments but no user_info row, as in real exports.
        if rng.below(100) >= 3 {
            written.users_with_info += 1;
            write_user(&mut users_file, &user, &mut rng)?;
        }
        let wanted = (1.0 + rng.log_normal(0.6, 1.0)).min(courses as f64 / 2.0) as u64;
        taken.clear();
        while (taken.len() as u64) < wanted && written.enrollments < args.enrollments {
            let course = popularity.sample(&mut rng);
            if taken.contains(&course) {
                continue;
            }
            taken.push(course);
            let engagement = rng.normal();
            // Logistic in engagement, centred so that about 75% drop out.
            let dropout = rng.unit() < 1.0 / (1.0 + (1.9 * engagement - 1.1).exp());
            let level = if dropout { 0.4 } else { 1.8 } + 0.6 * engagement;
            let mut record = vec![
                user.clone(),
                course_id(course),
                u8::from(dropout).to_string(),
            ];
            let mut total = 0u64;
            for (index, _) in ACTION_COLUMNS.iter().enumerate() {
                let base = [1.2, 0.5, -0.3, -1.0][index % 4];
                let count = if rng.unit() < 0.3 {
                    0
                } else {
                    rng.log_normal(level + base, 1.1) as u64
                };
                total += count;
                record.push(count.to_string());
            }
            let sessions = 1 + (total as f64 / rng.log_normal(2.5, 0.5)) as u64;
            record.push(sessions.to_string());
            record.push(format!("{:.4}", total as f64 / sessions as f64));
            record.push((first_day + rng.below(30) as i64 * 86_400).to_string());
            train.write_record(&record)?;
            written.enrollments += 1;
        }
    }
    train.flush()?;
    users_file.flush()?;
    Ok(written)
}

fn write_user(
    out: &mut csv::Writer<BufWriter<File>>,
    user: &str,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    const GENDERS: [&str; 3] = ["male", "female", ""];
    const EDUCATION: [&str; 7] = [
        "Bachelor's",
        "Master's",
        "High",
        "Associate",
        "Doctorate",
        "Primary",
        "",
    ];
    let gender = GENDERS[rng.below(3) as usize];
    let education = EDUCATION[rng.below(7) as usize];
    let birth = match rng.below(10) {
        0 | 1 => String::new(),
        2 => format!("{}.0", 1960 + rng.below(45)),
        _ => (1960 + rng.below(45)).to_string(),
    };
    out.write_record([user, gender, education, &birth])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_into(dir: &Path, enrollments: u64, seed: u64) -> Generated {
        generate(&GenerateArgs {
            enrollments,
            seed,
            out: dir.to_owned(),
        })
        .unwrap()
    }

    #[test]
    fn output_is_seeded_sized_and_realistic() {
        let dir = std::env::temp_dir().join(format!("mooc-generate-{}", std::process::id()));
        let generated = generate_into(&dir, 20_000, 7);
        let train = std::fs::read(dir.join("train.csv")).unwrap();
        let users = std::fs::read(dir.join("user_info.csv")).unwrap();
        assert_eq!(generate_into(&dir, 20_000, 7), generated);
        assert_eq!(
            std::fs::read(dir.join("train.csv")).unwrap(),
            train,
            "same seed, same bytes"
        );

        let mut reader = csv::Reader::from_reader(&train[..]);
        let mut pairs = std::collections::HashSet::new();
        let mut dropouts = 0;
        let mut rows = 0;
        for record in reader.records() {
            let record = record.unwrap();
            assert_eq!(record.len(), 28);
            assert!(
                pairs.insert((record[0].to_owned(), record[1].to_owned())),
                "unique pairs"
            );
            dropouts += usize::from(&record[2] == "1");
            rows += 1;
        }
        assert_eq!(rows, 20_000);
        let rate = dropouts as f64 / rows as f64;
        assert!((0.65..0.85).contains(&rate), "dropout rate {rate}");
        let user_rows = csv::Reader::from_reader(&users[..]).records().count() as u64;
        assert_eq!(user_rows, generated.users_with_info);
        assert!(generated.users_with_info < generated.users);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
