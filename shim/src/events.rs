//! Task events to containerd (TaskCreate, TaskStart, TaskExit, TaskOOM, ...).
//!
//! Publishing is a ttrpc call back into containerd; it runs on its own thread, in order, so that no
//! task request and no exit handler ever waits on containerd.

use std::{sync::mpsc, thread};

use containerd_shim::{
    protos::{protobuf::MessageDyn, ttrpc::context::Context},
    publisher::RemotePublisher,
};

#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<(&'static str, Box<dyn MessageDyn>)>,
}

impl Events {
    pub fn start(publisher: RemotePublisher, namespace: String) -> Events {
        let (tx, rx) = mpsc::channel::<(&'static str, Box<dyn MessageDyn>)>();
        let spawned = thread::Builder::new().name("events".into()).spawn(move || {
            for (topic, event) in rx {
                if let Err(e) = publisher.publish(Context::default(), topic, &namespace, event) {
                    log::warn!("publish {topic}: {e}");
                }
            }
        });
        if let Err(e) = spawned {
            log::error!("cannot start the event publisher: {e}");
        }
        Events { tx }
    }

    pub fn send(&self, topic: &'static str, event: Box<dyn MessageDyn>) {
        if self.tx.send((topic, event)).is_err() {
            log::warn!("event publisher gone; dropped {topic}");
        }
    }
}
