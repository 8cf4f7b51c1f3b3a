//! The label of the job the current thread works for, which every log line names.
//!
//! Log lines read `ari (LABEL) [LEVEL] message`; the formatter (in `ari-cli`) asks for the label
//! here. A thread-local keeps parallel jobs, each on its own thread, apart.

use std::cell::RefCell;

thread_local! {
    static LABEL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sets the current thread's job label; `None` for work that belongs to no job.
pub fn set_job_label(label: Option<&str>) {
    LABEL.with(|l| *l.borrow_mut() = label.map(str::to_string));
}

/// The current thread's job label, if any.
pub fn job_label() -> Option<String> {
    LABEL.with(|l| l.borrow().clone())
}
