//! The train/test split along one axis at the middle of the coordinates' range.

use study_design::SplitAxis;

/// Which positions go to train and which to test.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The axis split along.
    pub axis: SplitAxis,
    /// `min + 0.5 (max - min)` of that axis's coordinates.
    pub point: f64,
    /// Indices with coordinate < point, ascending.
    pub train: Vec<usize>,
    /// The rest, ascending.
    pub test: Vec<usize>,
}

/// Splits positions: train is `coord < min + 0.5 (max - min)`, test the rest. `None` when a
/// side would be empty (all coordinates equal along the axis).
pub fn split_positions(xcoords: &[f64], ycoords: &[f64], axis: SplitAxis) -> Option<Split> {
    let coords = match axis {
        SplitAxis::Y => ycoords,
        SplitAxis::X => xcoords,
    };
    let lo = coords.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = coords.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let point = lo + 0.5 * (hi - lo);
    let (train, test): (Vec<usize>, Vec<usize>) =
        (0..coords.len()).partition(|&i| coords[i] < point);
    (!train.is_empty() && !test.is_empty()).then_some(Split {
        axis,
        point,
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_middle_of_the_range() {
        let ys = [10.0, 30.0, 20.0, 19.9, 50.0];
        let xs = [0.0; 5];
        let s = split_positions(&xs, &ys, SplitAxis::Y).unwrap();
        assert_eq!(s.point, 30.0);
        assert_eq!(s.train, [0, 2, 3]);
        assert_eq!(s.test, [1, 4]);
        let s = split_positions(&ys, &xs, SplitAxis::X).unwrap();
        assert_eq!(s.train, [0, 2, 3]);
        assert!(split_positions(&xs, &xs, SplitAxis::Y).is_none());
    }
}
