//! Chapter 1's baseline, `mnist_average_darkness.py`: the average darkness (sum of pixel
//! values) of each digit's training images, and a guess for an image that names the digit
//! whose average is nearest its darkness. The book scores it at 2,225 of the 10,000 test
//! images (22.25%), against about 10% for random guessing.

use crate::data::{Dataset, CLASSES};
use crate::real::Real;

/// Each digit's average darkness over the training images.
#[derive(Clone, Debug, PartialEq)]
pub struct AverageDarkness {
    /// `avgs[d]`: the mean sum of pixel values of the images labelled d (0 for a digit with
    /// no images, as the book's `defaultdict` leaves it absent and never guesses it).
    pub avgs: Vec<Option<f64>>,
}

impl AverageDarkness {
    /// `avg_darknesses(training_data)`.
    pub fn fit<F: Real>(training: &Dataset<F>) -> Self {
        let mut counts = [0usize; CLASSES];
        let mut sums = [0.0f64; CLASSES];
        for (image, &digit) in training.images().rows().into_iter().zip(training.labels()) {
            let d = usize::from(digit).min(CLASSES - 1);
            counts[d] += 1;
            sums[d] += image.iter().map(|&p| p.as_f64()).sum::<f64>();
        }
        AverageDarkness {
            avgs: counts
                .iter()
                .zip(sums)
                .map(|(&n, s)| (n > 0).then(|| s / n as f64))
                .collect(),
        }
    }

    /// `guess_digit(image, avgs)`: the digit whose average darkness is nearest the image's
    /// (the lowest such digit on a tie, as Python's `min` over the digits in order).
    pub fn guess(&self, darkness: f64) -> usize {
        let mut best = (0, f64::INFINITY);
        for (d, avg) in self.avgs.iter().enumerate() {
            if let Some(avg) = avg {
                let distance = (avg - darkness).abs();
                if distance < best.1 {
                    best = (d, distance);
                }
            }
        }
        best.0
    }

    /// How many images of `data` it guesses right.
    pub fn evaluate<F: Real>(&self, data: &Dataset<F>) -> usize {
        data.images()
            .rows()
            .into_iter()
            .zip(data.labels())
            .filter(|(image, &digit)| {
                let darkness = image.iter().map(|&p| p.as_f64()).sum::<f64>();
                self.guess(darkness) == usize::from(digit)
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn each_image_gets_the_digit_of_the_nearest_average() {
        // Digit 0: darkness 1 and 3 (average 2); digit 1: 10; digit 2: none.
        let training = Dataset::new(array![[1.0, 0.0], [2.0, 1.0], [4.0, 6.0]], vec![0u8, 0, 1]);
        let model = AverageDarkness::fit(&training);
        assert_eq!(model.avgs[0], Some(2.0));
        assert_eq!(model.avgs[1], Some(10.0));
        assert_eq!(model.avgs[2], None);
        assert_eq!(model.guess(0.0), 0);
        assert_eq!(model.guess(6.0), 0, "a tie goes to the lower digit");
        assert_eq!(model.guess(6.1), 1);
        let test = Dataset::new(array![[0.5, 0.5], [9.0, 0.0], [3.0, 4.0]], vec![0u8, 1, 0]);
        assert_eq!(model.evaluate(&test), 2);
    }
}
