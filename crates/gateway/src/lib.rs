//! sagebridge gateway
