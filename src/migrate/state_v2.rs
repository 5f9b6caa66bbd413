//! State schema 1 -> 2: the state directory gets its stamp
//! (`<state>/schema-version`); schema 1 is every state written before
//! there was one.
//!
//! The data itself keeps its layout in this step (the runner writes the
//! stamp last, once every operation of every step is done).

use super::view::StateView;
use super::{StateChanges, StateStep, StepError};

/// The step.
pub const STEP: StateStep = StateStep {
    to: 2,
    name: "state_v2 (schema stamp)",
    forward,
};

fn forward(_view: &StateView) -> Result<StateChanges, StepError> {
    Ok(StateChanges::default())
}
