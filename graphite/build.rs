//! With the `http` feature: compile go-graphite's carbonapi `.proto` files (graphite/proto/)
//! into prost types for `server::carbonapi`. protox parses them in Rust, so the build needs no
//! `protoc` binary.

fn main() {
    println!("cargo::rerun-if-changed=proto");
    #[cfg(feature = "http")]
    compile();
}

#[cfg(feature = "http")]
fn compile() {
    let files = ["proto/carbonapi_v2_pb.proto", "proto/carbonapi_v3_pb.proto"];
    let descriptors = match protox::compile(files, ["proto"]) {
        Ok(d) => d,
        Err(e) => panic!("graphite/proto: {e}"),
    };
    if let Err(e) = prost_build::Config::new().compile_fds(descriptors) {
        panic!("graphite/proto: generating the prost types: {e}");
    }
}
