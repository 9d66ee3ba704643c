//! Chapter 3's "no improvement in n epochs", the rule behind both early stopping and the
//! schedule that halves η: how many epochs have passed since the evaluation accuracy last
//! improved, and, for early stopping, the model as it was at its best epoch.

/// Epochs without improvement of the evaluation accuracy.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Plateau<M> {
    /// The most evaluation examples classified correctly so far.
    best: Option<usize>,
    /// Epochs since the best one.
    pub since_best: usize,
    /// Epochs since the best one or the last change of η, whichever is later.
    pub since_change: usize,
    /// The model at its best epoch, when kept.
    best_model: Option<M>,
}

impl<M: Clone> Plateau<M> {
    pub fn new() -> Self {
        Plateau {
            best: None,
            since_best: 0,
            since_change: 0,
            best_model: None,
        }
    }

    /// Records an epoch that classified `correct` evaluation examples; on a new best, keeps a
    /// copy of `model` if `keep`.
    pub fn record(&mut self, correct: usize, model: &M, keep: bool) {
        if self.best.is_none_or(|b| correct > b) {
            self.best = Some(correct);
            self.since_best = 0;
            self.since_change = 0;
            if keep {
                match &mut self.best_model {
                    Some(best) => best.clone_from(model),
                    None => self.best_model = Some(model.clone()),
                }
            }
        } else {
            self.since_best += 1;
            self.since_change += 1;
        }
    }

    /// η has just been changed.
    pub fn eta_changed(&mut self) {
        self.since_change = 0;
    }

    /// The model of the best epoch, if one was kept.
    pub fn best(&self) -> Option<&M> {
        self.best_model.as_ref()
    }

    /// The model of the best epoch, if one was kept, taken out.
    pub fn take_best(&mut self) -> Option<M> {
        self.best_model.take()
    }
}

impl<M: Clone> Default for Plateau<M> {
    fn default() -> Self {
        Self::new()
    }
}
