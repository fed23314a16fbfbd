//! A WASI component that exports one plain function and no Grito world.

#[unsafe(no_mangle)]
pub extern "C" fn add(left: i32, right: i32) -> i32 {
    left + right
}
