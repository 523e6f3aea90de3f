//! sagebridge server
