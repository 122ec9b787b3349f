//! What the dashboard's browser tests share: the fixture lab and the Chromium driver.

pub mod cdp;
pub mod fixture;
