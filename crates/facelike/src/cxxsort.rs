//! `std::sort` exactly as GCC's libstdc++ implements it (introsort: median-of-three quicksort
//! down to runs of 16, heapsort past the depth limit, then a final insertion sort).
//!
//! dlib sorts detections with `std::sort`, which is not stable: when two detections have the
//! same score, their order (and so which one survives non-max suppression) is whatever this
//! particular algorithm produces. Reproducing it keeps ties resolved as the reference does.
//!
//! Where sorting ties matter is listed in `docs/dlib-algorithms.md#parity-pitfalls`.

/// Run-length below which libstdc++ stops partitioning.
const THRESHOLD: usize = 16;

/// `std::sort(v.begin(), v.end(), less)`.
pub fn sort_by<T, F: FnMut(&T, &T) -> bool>(v: &mut [T], mut less: F) {
    let n = v.len();
    if n == 0 {
        return;
    }
    let depth = 2 * (usize::BITS - 1 - n.leading_zeros()) as usize;
    introsort_loop(v, 0, n, depth, &mut less);
    final_insertion_sort(v, 0, n, &mut less);
}

/// `std::sort(v.rbegin(), v.rend(), less)`: the same algorithm on the reversed sequence,
/// which leaves `v` in descending order.
pub fn sort_reversed_by<T, F: FnMut(&T, &T) -> bool>(v: &mut [T], less: F) {
    v.reverse();
    sort_by(v, less);
    v.reverse();
}

fn introsort_loop<T, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    first: usize,
    mut last: usize,
    mut depth: usize,
    less: &mut F,
) {
    while last - first > THRESHOLD {
        if depth == 0 {
            heap_sort(&mut v[first..last], less);
            return;
        }
        depth -= 1;
        let cut = partition_pivot(v, first, last, less);
        introsort_loop(v, cut, last, depth, less);
        last = cut;
    }
}

fn partition_pivot<T, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    first: usize,
    last: usize,
    less: &mut F,
) -> usize {
    let mid = first + (last - first) / 2;
    move_median_to_first(v, first, first + 1, mid, last - 1, less);
    unguarded_partition(v, first + 1, last, first, less)
}

fn move_median_to_first<T, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    result: usize,
    a: usize,
    b: usize,
    c: usize,
    less: &mut F,
) {
    let pick = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(result, pick);
}

fn unguarded_partition<T, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    mut first: usize,
    mut last: usize,
    pivot: usize,
    less: &mut F,
) -> usize {
    loop {
        while less(&v[first], &v[pivot]) {
            first += 1;
        }
        last -= 1;
        while less(&v[pivot], &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

fn final_insertion_sort<T, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    first: usize,
    last: usize,
    less: &mut F,
) {
    if last - first > THRESHOLD {
        insertion_sort(v, first, first + THRESHOLD, less);
        for i in first + THRESHOLD..last {
            unguarded_linear_insert(v, i, less);
        }
    } else {
        insertion_sort(v, first, last, less);
    }
}

fn insertion_sort<T, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    first: usize,
    last: usize,
    less: &mut F,
) {
    if first == last {
        return;
    }
    for i in first + 1..last {
        if less(&v[i], &v[first]) {
            v[first..=i].rotate_right(1);
        } else {
            unguarded_linear_insert(v, i, less);
        }
    }
}

/// Moves `v[last]` left past every element it is less than (a smaller element is known to
/// exist to its left, so no bounds test is needed in C++; here the index simply stops).
fn unguarded_linear_insert<T, F: FnMut(&T, &T) -> bool>(v: &mut [T], last: usize, less: &mut F) {
    let mut hole = last;
    while hole > 0 && less(&v[last], &v[hole - 1]) {
        hole -= 1;
    }
    v[hole..=last].rotate_right(1);
}

/// libstdc++'s `__partial_sort(first, last, last)`: `make_heap` then `sort_heap`.
fn heap_sort<T, F: FnMut(&T, &T) -> bool>(v: &mut [T], less: &mut F) {
    let len = v.len();
    if len < 2 {
        return;
    }
    // make_heap
    let mut parent = (len - 2) / 2;
    loop {
        adjust_heap(v, parent, len, parent, less);
        if parent == 0 {
            break;
        }
        parent -= 1;
    }
    // sort_heap: pop the maximum to the end, one at a time.
    let mut last = len;
    while last > 1 {
        last -= 1;
        // __pop_heap(first, last, last): value = v[last]; v[last] = v[0]; adjust_heap(0, value).
        v.swap(0, last);
        adjust_heap(v, 0, last, 0, less);
    }
}

/// libstdc++'s `__adjust_heap` + `__push_heap` for a heap of `len` elements in `v`, where the
/// value being placed currently sits at index `value_at` (which is also `hole`).
fn adjust_heap<T, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    hole: usize,
    len: usize,
    value_at: usize,
    less: &mut F,
) {
    debug_assert_eq!(hole, value_at);
    // The C++ code moves the value out and shifts children up into the hole. Here the value
    // travels with swaps, which performs the same comparisons and leaves the same layout.
    let top = hole;
    let mut hole = hole;
    let mut second = hole;
    while second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if less(&v[second], &v[second - 1]) {
            second -= 1;
        }
        v.swap(hole, second);
        hole = second;
    }
    if len & 1 == 0 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        v.swap(hole, second - 1);
        hole = second - 1;
    }
    // push_heap: the value (now at `hole`) bubbles up towards `top`.
    while hole > top {
        let parent = (hole - 1) / 2;
        if less(&v[parent], &v[hole]) {
            v.swap(hole, parent);
            hole = parent;
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_a_sort() {
        // A deterministic pseudo-random sequence, long enough to exercise partitioning and
        // (with many duplicates) the unstable tie order.
        let mut x = 12345u64;
        let mut v: Vec<(u32, usize)> = (0..500)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((x >> 33) % 37) as u32, i)
            })
            .collect();
        let mut expect: Vec<u32> = v.iter().map(|p| p.0).collect();
        expect.sort();
        sort_by(&mut v, |a, b| a.0 < b.0);
        assert_eq!(v.iter().map(|p| p.0).collect::<Vec<_>>(), expect);
        sort_reversed_by(&mut v, |a, b| a.0 < b.0);
        expect.reverse();
        assert_eq!(v.iter().map(|p| p.0).collect::<Vec<_>>(), expect);
    }

    #[test]
    fn heap_sort_sorts() {
        let mut v: Vec<i32> = vec![5, 3, 9, 1, 1, 8, 2, 7, 0, 6, 4, 3];
        heap_sort(&mut v, &mut |a: &i32, b: &i32| a < b);
        assert_eq!(v, vec![0, 1, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn small_sorts_are_insertion_sorts() {
        // Up to 16 elements libstdc++ only runs an insertion sort, which is stable.
        let mut v = vec![(1, 'a'), (0, 'b'), (1, 'c'), (0, 'd')];
        sort_by(&mut v, |a, b| a.0 < b.0);
        assert_eq!(v, vec![(0, 'b'), (0, 'd'), (1, 'a'), (1, 'c')]);
    }
}
