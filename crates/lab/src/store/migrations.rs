//! The schema, as an ordered list of versioned migrations shared by SQLite and PostgreSQL.
//!
//! Each migration is written once; tokens stand for what the two dialects spell differently:
//! `{id}` (an auto-incrementing 64-bit primary key), `{float}` (a 64-bit float) and
//! `{point_wall_seconds}` (an RD point's encode plus decode wall seconds, read from its record),
//! `{experiment_state_guard_function}` and `{experiment_state_guard_trigger}` (the trigger that
//! refuses a change of state out of `completed` other than to `analysed`, and any out of
//! `analysed`, `failed` or `cancelled`; SQLite needs no function, so its first token is empty).
//! Statements are split on `;` before tokens are replaced, so that a token may stand for a
//! statement with semicolons of its own (a trigger body).
//! A migration is never edited after release: a change is a new migration with the next number.

/// One schema step.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    /// Statements separated by `;`.
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: r#"
CREATE TABLE clips (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    frames BIGINT NOT NULL,
    fps TEXT NOT NULL,
    clip_set TEXT NOT NULL,
    class TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE TABLE codecs (
    hash TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE experiments (
    id {id},
    codec_hash TEXT NOT NULL,
    spec TEXT NOT NULL,
    proposer TEXT NOT NULL,
    hypothesis TEXT NOT NULL,
    parents TEXT NOT NULL,
    rerun_of BIGINT,
    anchor_name TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX experiments_state ON experiments (state);
CREATE TABLE jobs (
    id {id},
    experiment_id BIGINT NOT NULL,
    clip_id TEXT NOT NULL,
    rate_index BIGINT NOT NULL,
    rate_point TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires BIGINT,
    heartbeat_at BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (experiment_id, clip_id, rate_index)
);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE TABLE rd_points (
    id {id},
    experiment_id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    clip_id TEXT NOT NULL,
    rate_index BIGINT NOT NULL,
    record TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    kbps {float} NOT NULL,
    psnr_y {float},
    psnr_yuv {float},
    ssim {float},
    ms_ssim {float},
    vmaf {float},
    worker TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (experiment_id, clip_id, rate_index)
);
CREATE TABLE results (
    experiment_id BIGINT PRIMARY KEY,
    analysis TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE anchors (
    anchor_key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    experiment_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE planner_log (
    id {id},
    experiment_id BIGINT,
    planner TEXT NOT NULL,
    prompt TEXT NOT NULL,
    reply TEXT NOT NULL,
    reasoning TEXT NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cost_usd {float},
    created_at BIGINT NOT NULL
);
CREATE TABLE events (
    id {id},
    kind TEXT NOT NULL,
    experiment_id BIGINT,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
"#,
    },
    Migration {
        version: 2,
        name: "planner loop and control",
        sql: r#"
ALTER TABLE planner_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'proposed';
ALTER TABLE planner_log ADD COLUMN detail TEXT;
ALTER TABLE planner_log ADD COLUMN model TEXT;
ALTER TABLE planner_log ADD COLUMN hypothesis TEXT;
CREATE TABLE programs (
    experiment_id BIGINT PRIMARY KEY,
    run_id TEXT NOT NULL,
    planner TEXT NOT NULL,
    role TEXT NOT NULL,
    parent BIGINT,
    island BIGINT NOT NULL,
    stage TEXT NOT NULL,
    genome TEXT NOT NULL,
    edits TEXT NOT NULL,
    features TEXT,
    fitness {float},
    scores TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX programs_run ON programs (run_id, experiment_id);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE admin_actions (
    id {id},
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    experiment_id BIGINT,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE notes (
    id {id},
    experiment_id BIGINT,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX experiments_created ON experiments (created_at);
CREATE INDEX planner_log_experiment ON planner_log (experiment_id)
"#,
    },
    Migration {
        version: 3,
        name: "experiment listing",
        sql: r#"
CREATE TABLE experiment_summaries (
    experiment_id BIGINT PRIMARY KEY,
    anchor TEXT NOT NULL,
    bd_psnr_y {float},
    bd_vmaf {float},
    bd_ssim {float},
    encode_fps {float},
    decode_fps {float},
    decoder_instructions_per_pixel {float},
    compute_seconds {float} NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX experiment_summaries_bd_psnr_y ON experiment_summaries (bd_psnr_y);
CREATE INDEX experiments_state_id ON experiments (state, id);
CREATE INDEX experiments_proposer_id ON experiments (proposer, id);
CREATE INDEX experiments_codec_id ON experiments (codec_hash, id);
CREATE INDEX anchors_clip ON anchors (clip_id, name);
CREATE INDEX programs_fitness ON programs (fitness)
"#,
    },
    Migration {
        version: 4,
        name: "measuring time per point",
        sql: r#"
ALTER TABLE rd_points ADD COLUMN measure_seconds {float};
CREATE INDEX rd_points_created ON rd_points (created_at)
"#,
    },
    Migration {
        version: 5,
        name: "a run's leading programs; measuring time from the index",
        sql: r#"
DROP INDEX programs_fitness;
CREATE INDEX programs_run_role_fitness ON programs (run_id, role, fitness);
UPDATE rd_points SET measure_seconds = {point_wall_seconds} WHERE measure_seconds IS NULL;
DROP INDEX rd_points_created;
CREATE INDEX rd_points_created_seconds ON rd_points (created_at, measure_seconds)
"#,
    },
    Migration {
        version: 6,
        name: "the learned tools' multiply-accumulates per pixel",
        sql: r#"
ALTER TABLE experiment_summaries ADD COLUMN learned_mac_per_pixel {float}
"#,
    },
    Migration {
        version: 7,
        name: "fenced leases; immutable ended experiments",
        sql: r#"
ALTER TABLE jobs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
{experiment_state_guard_function};
{experiment_state_guard_trigger}
"#,
    },
];
