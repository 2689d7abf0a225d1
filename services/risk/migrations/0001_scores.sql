-- Scores given, kept so that the outcome of each early intervention can feed the next training set.
CREATE TABLE scores (
    score_id        bigserial PRIMARY KEY,
    case_id         text NOT NULL,
    model_version   text NOT NULL,
    probability_ppm integer NOT NULL CHECK (probability_ppm BETWEEN 0 AND 1000000),
    band            text NOT NULL,
    scored_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scores_case_idx ON scores (case_id, scored_at DESC);
