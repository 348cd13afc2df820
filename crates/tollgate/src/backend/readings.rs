//! Token counters: readings, estimates, imports and corrections, on either side.

use super::*;

impl Backend {
    // ---- token counters ----------------------------------------------------------------------

    /// Records a cumulative reading on counter `name` of `team`.
    pub async fn record_reading(
        &self,
        team: i64,
        name: &str,
        reading: i64,
        note: ReadingNote,
    ) -> Outcome<ReadingRecorded> {
        match self {
            Self::Local(l) => {
                let (c, r) =
                    counters::record(&l.rules(), &l.actor(), Some(team), name, reading, note)
                        .await?;
                Ok(ReadingRecorded {
                    counter: CounterStatus::from(&c),
                    reading: (&r).into(),
                })
            }
            Self::Remote(r) => {
                let body = ReadingCreate {
                    reading: Figure::Number(reading),
                    event: note.event,
                    conversation_id: note.conversation_id,
                    sync_type: Some(note.sync_type),
                };
                let path = format!("api/v1/counters/{}/readings?team_id={team}", segment(name));
                r.send(Method::POST, &path, &body).await
            }
        }
    }

    /// The status of counter `name` of `team`. Locally a missing counter is created with the
    /// default quota, as `sync status` always did.
    pub async fn counter_status(&self, team: i64, name: &str) -> Outcome<CounterStatus> {
        match self {
            Self::Local(l) => {
                let counter = match l.store.counter_by_name(team, name).await? {
                    Some(c) => c,
                    None => {
                        l.store
                            .ensure_counter(team, name, counters::DEFAULT_QUOTA)
                            .await?
                    }
                };
                Ok(CounterStatus::from(&counter))
            }
            Self::Remote(r) => {
                r.get(&format!("api/v1/counters/{}?team_id={team}", segment(name)))
                    .await
            }
        }
    }

    /// Adds `tokens` counted from two texts to counter `name` of `team` as an `estimate`
    /// reading. A server counts the texts itself, with the same vocabulary.
    pub async fn estimate_reading(
        &self,
        team: i64,
        name: &str,
        tokens: i64,
        texts: CounterEstimate,
    ) -> Outcome<ReadingRecorded> {
        match self {
            Self::Local(l) => {
                let note = ReadingNote {
                    event: texts.event.unwrap_or_default(),
                    conversation_id: None,
                    sync_type: "estimate".into(),
                };
                let (c, r) =
                    counters::add(&l.rules(), &l.actor(), Some(team), name, tokens, note).await?;
                Ok(ReadingRecorded {
                    counter: CounterStatus::from(&c),
                    reading: (&r).into(),
                })
            }
            Self::Remote(r) => {
                let path = format!("api/v1/counters/{}/estimate?team_id={team}", segment(name));
                r.send(Method::POST, &path, &texts).await
            }
        }
    }

    /// Adds sessions to counter `name` of `team` in time order; `progress` ticks per session
    /// (locally; a server adds them in one request).
    pub async fn import_sessions(
        &self,
        team: i64,
        name: &str,
        sessions: Vec<counters::ImportedSession>,
        progress: impl FnMut(),
    ) -> Outcome<CounterImported> {
        match self {
            Self::Local(l) => {
                let (c, added) = counters::import(
                    &l.rules(),
                    &l.actor(),
                    Some(team),
                    name,
                    &sessions,
                    progress,
                )
                .await?;
                Ok(CounterImported {
                    imported: sessions.len(),
                    tokens: added,
                    counter: CounterStatus::from(&c),
                })
            }
            Self::Remote(r) => {
                let body = CounterImport {
                    sessions: sessions
                        .into_iter()
                        .map(|s| SessionImport {
                            tokens: Figure::Number(s.tokens),
                            event: s.event,
                            timestamp: Some(Moment::Millis(s.ts_ms)),
                        })
                        .collect(),
                };
                let path = format!("api/v1/counters/{}/import?team_id={team}", segment(name));
                r.send(Method::POST, &path, &body).await
            }
        }
    }

    /// Corrects reading `id` to `figure`, or deletes it (`None`); the later readings are
    /// recomputed.
    pub async fn revise_reading(
        &self,
        team: i64,
        name: &str,
        id: i64,
        figure: Option<i64>,
    ) -> Outcome<(CounterStatus, Option<ReadingView>)> {
        match self {
            Self::Local(l) => {
                let (c, r) =
                    counters::revise(&l.rules(), &l.actor(), Some(team), name, id, figure).await?;
                Ok((CounterStatus::from(&c), r.as_ref().map(ReadingView::from)))
            }
            Self::Remote(r) => {
                let path = format!(
                    "api/v1/counters/{}/readings/{id}?team_id={team}",
                    segment(name)
                );
                match figure {
                    Some(figure) => {
                        let body = ReadingCorrection {
                            reading: Figure::Number(figure),
                        };
                        let done: ReadingRecorded = r.send(Method::PATCH, &path, &body).await?;
                        Ok((done.counter, Some(done.reading)))
                    }
                    None => Ok((r.delete_json(&path).await?, None)),
                }
            }
        }
    }
}
