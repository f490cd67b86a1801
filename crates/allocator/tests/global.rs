//! The allocator as this test binary's global allocator: the harness, the
//! threads and every collection below allocate through it, and the tests then
//! check what came back by hand, through `GlobalAlloc` itself.

use std::{
    alloc::{GlobalAlloc, Layout},
    thread,
};

use lookout_allocator::Allocator;

#[global_allocator]
static ALLOCATOR: Allocator = Allocator::new();

/// xorshift64: varied sizes and alignments, the same on every run.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A size spread over small blocks, pages and dlmalloc's mmap'd chunks
    /// (256 KiB and up).
    fn size(&mut self) -> usize {
        match self.next() % 10 {
            0 => (self.next() % (2 << 20)) as usize + 1,
            1..=3 => (self.next() % 8192) as usize + 1,
            _ => (self.next() % 256) as usize + 1,
        }
    }

    fn align(&mut self) -> usize {
        1 << (self.next() % 13) // 1 to 4096
    }
}

/// One live block, filled with a byte its owner chose.
struct Block {
    ptr: *mut u8,
    layout: Layout,
    fill: u8,
}

impl Block {
    fn new(layout: Layout, fill: u8) -> Self {
        // SAFETY: every layout here has a nonzero size.
        let ptr = unsafe { ALLOCATOR.alloc(layout) };
        assert!(!ptr.is_null(), "allocation of {layout:?} failed");
        assert_eq!(ptr as usize % layout.align(), 0, "{layout:?} misaligned");
        // SAFETY: a fresh block of layout.size() bytes.
        unsafe { ptr.write_bytes(fill, layout.size()) };
        Self { ptr, layout, fill }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the block is live and all of it was written.
        unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }

    fn check(&self) {
        assert!(
            self.bytes().iter().all(|&b| b == self.fill),
            "a block of {:?} filled with {:#x} was overwritten",
            self.layout,
            self.fill
        );
    }

    /// Grows or shrinks the block; the bytes both sizes share must stay.
    fn resize(&mut self, new_size: usize) {
        let kept = self.layout.size().min(new_size);
        // SAFETY: the block is live with this layout; new_size is nonzero and
        // small enough for any alignment used here.
        let ptr = unsafe { ALLOCATOR.realloc(self.ptr, self.layout, new_size) };
        assert!(!ptr.is_null(), "realloc to {new_size} failed");
        assert_eq!(
            ptr as usize % self.layout.align(),
            0,
            "realloc lost the alignment"
        );
        self.ptr = ptr;
        self.layout = Layout::from_size_align(new_size, self.layout.align()).unwrap();
        // SAFETY: the first `kept` bytes are initialised, by realloc's contract.
        let shared = unsafe { std::slice::from_raw_parts(ptr, kept) };
        assert!(
            shared.iter().all(|&b| b == self.fill),
            "realloc lost the contents"
        );
        // SAFETY: the whole new block is writable.
        unsafe { ptr.write_bytes(self.fill, new_size) };
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated by ALLOCATOR with this layout, freed once.
        unsafe { ALLOCATOR.dealloc(self.ptr, self.layout) };
    }
}

// SAFETY: a block is owned by one thread at a time.
unsafe impl Send for Block {}

/// Allocates, fills, resizes and frees in a scattered order, checking every
/// block before it goes.
fn churn(seed: u64, rounds: usize, fill: u8) {
    let mut seq = Sequence(seed);
    let mut live: Vec<Block> = Vec::new();
    for _ in 0..rounds {
        match seq.next() % 4 {
            0 | 1 => {
                let layout = Layout::from_size_align(seq.size(), seq.align()).unwrap();
                live.push(Block::new(layout, fill));
            }
            2 if !live.is_empty() => {
                let i = (seq.next() % live.len() as u64) as usize;
                let block = live.swap_remove(i);
                block.check();
            }
            _ if !live.is_empty() => {
                let i = (seq.next() % live.len() as u64) as usize;
                live[i].check();
                let size = seq.size();
                live[i].resize(size);
            }
            _ => {}
        }
    }
    for block in &live {
        block.check();
    }
}

#[test]
fn blocks_of_every_size_and_alignment_keep_their_contents() {
    churn(0x9e37_79b9_7f4a_7c15, 4_000, 0x5a);
}

#[test]
fn threads_allocating_at_once_never_share_a_block() {
    // Each thread writes its own byte: a block handed out twice, or a free
    // list corrupted by two threads at once, shows as another thread's byte.
    let threads: Vec<_> = (1..=8u8)
        .map(|t| thread::spawn(move || churn(u64::from(t) * 0x1234_5678_9abc_def1, 3_000, t)))
        .collect();
    for t in threads {
        t.join().expect("a thread's blocks were corrupted");
    }
}

#[test]
fn blocks_freed_by_another_thread_are_reused_safely() {
    let blocks: Vec<Block> = (0..500)
        .map(|i| Block::new(Layout::from_size_align(16 + i * 7, 8).unwrap(), 0xc3))
        .collect();
    // Freed on another thread than the one that allocated them.
    thread::spawn(move || drop(blocks)).join().unwrap();
    churn(42, 2_000, 0x3c);
}

#[test]
fn zeroed_blocks_are_zero_even_where_freed_memory_is_reused() {
    let mut seq = Sequence(7);
    for _ in 0..500 {
        let layout = Layout::from_size_align(seq.size(), seq.align()).unwrap();
        drop(Block::new(layout, 0xff));
        // SAFETY: a nonzero size.
        let ptr = unsafe { ALLOCATOR.alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        assert_eq!(ptr as usize % layout.align(), 0);
        // SAFETY: a live block of layout.size() bytes, zeroed by contract.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
        assert!(
            bytes.iter().all(|&b| b == 0),
            "alloc_zeroed of {layout:?} was not zeroed"
        );
        // SAFETY: allocated just above with this layout.
        unsafe { ALLOCATOR.dealloc(ptr, layout) };
    }
}

#[test]
fn an_impossible_request_returns_null_instead_of_aborting() {
    // Larger than any address space: GlobalAlloc's way to fail is null.
    let layout = Layout::from_size_align(isize::MAX as usize - 4096, 8).unwrap();
    // SAFETY: a nonzero size.
    let ptr = unsafe { ALLOCATOR.alloc(layout) };
    assert!(ptr.is_null());
}
