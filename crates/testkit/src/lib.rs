//! sagebridge testkit
